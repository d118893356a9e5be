"""A small synthetic speech corpus in the four corpora's real layouts.

On a fresh machine or in CI the real corpora (TESS, SAVEE, RAVDESS, CREMA-D)
are not there. :func:`generate_demo_corpus` writes a stand-in corpus whose
folders, file names, sentences, speakers (with their genders) and sample rates
follow the real distributions, so that the real parsers and the whole pipeline
run on real code paths::

    out/TESS/TESS Toronto emotional speech set data/OAF_Fear/OAF_back_fear.wav
    out/SAVEE/AudioData/DC/sa01.wav
    out/RAVDESS/Actor_01/03-01-05-02-01-02-01.wav
    out/CREMA-D/AudioWAV/1001_IEO_ANG_HI.wav

Speech is synthesised in Python with eSpeak NG through ctypes (the shared
library shipped by the ``espeakng-loader`` wheel; no executable, nothing is
downloaded). Each emotion
gets its own prosody (pitch level and range, rate, loudness, punctuation-driven
intonation) drawn per utterance from overlapping distributions, then a
deterministic post-processing adds voice-quality cues eSpeak cannot produce
(tremolo and vibrato for fear, spectral brightness and saturation for anger,
breathiness for sadness and disgust, creak for disgust), a little silence
around the utterance and light background noise. Different eSpeak voice
variants stand in for the different speakers, so the classes are learnable
but not trivially separable.

Determinism: eSpeak NG keeps internal state across utterances in a process
(its pitch-flutter phase, among others), so the same call to :func:`synthesize`
can differ slightly depending on what the process synthesised before. The
generator therefore runs the synthesis in fresh worker processes, each with a
fixed list of files decided up front by the parent from ``seed``: the same
``(per_class, seed, corpora)`` always gives byte-identical files.
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from speech_emotion.corpora.common import CORPORA
from speech_emotion.corpora import crema, ravdess, savee

__all__ = [
    "CORPUS_DIRS",
    "ESPEAK_SAMPLE_RATE",
    "MARKER_NAME",
    "NATIVE_SAMPLE_RATES",
    "generate_demo_corpus",
    "synthesize",
]

GENERATOR_VERSION = 1
LOCK_NAME = ".DEMO_CORPUS.lock"
MARKER_NAME = "DEMO_CORPUS.json"
ESPEAK_SAMPLE_RATE = 22050

# Corpus root folder under `out` (what a user passes as --tess, --savee ...).
CORPUS_DIRS: dict[str, str] = {
    "tess": "TESS",
    "savee": "SAVEE",
    "ravdess": "RAVDESS",
    "crema": "CREMA-D",
}
NATIVE_SAMPLE_RATES: dict[str, int] = {
    "tess": 24414,
    "savee": 44100,
    "ravdess": 48000,
    "crema": 16000,
}
# Fixed number of files per worker process (independent of the machine, so
# that the output does not depend on the number of CPUs).
_FILES_PER_JOB = 48

# --------------------------------------------------------------------------
# eSpeak NG through ctypes (speak_lib.h, API revision 12)
# --------------------------------------------------------------------------
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_espeakCHARS_AUTO = 0
_espeakRATE, _espeakVOLUME, _espeakPITCH, _espeakRANGE = 1, 2, 3, 4
_EE_OK = 0

# int (t_espeak_callback)(short *wav, int numsamples, espeak_EVENT *events)
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class _ESpeak:
    """The process-global eSpeak NG engine (initialised once, used under a lock)."""

    _instance: _ESpeak | None = None
    _create_lock = threading.Lock()

    def __init__(self) -> None:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        # int espeak_Initialize(espeak_AUDIO_OUTPUT output, int buflength,
        #                       const char *path, int options)
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        # void espeak_SetSynthCallback(t_espeak_callback *SynthCallback)
        lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        # espeak_ERROR espeak_SetVoiceByName(const char *name)
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        # espeak_ERROR espeak_SetParameter(espeak_PARAMETER parameter, int value, int relative)
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        # espeak_ERROR espeak_Synth(const void *text, size_t size, unsigned int position,
        #     espeak_POSITION_TYPE position_type, unsigned int end_position,
        #     unsigned int flags, unsigned int *unique_identifier, void *user_data)
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.POINTER(ctypes.c_uint),
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        # espeak_ERROR espeak_Synchronize(void)
        lib.espeak_Synchronize.argtypes = []
        lib.espeak_Synchronize.restype = ctypes.c_int
        # void espeak_ng_SetRandSeed(long seed)  (espeak-ng >= 1.51; breath noise)
        self._set_rand_seed = getattr(lib, "espeak_ng_SetRandSeed", None)
        if self._set_rand_seed is not None:
            self._set_rand_seed.argtypes = [ctypes.c_long]
            self._set_rand_seed.restype = None

        data_path = espeakng_loader.get_data_path().encode()
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, 0)
        if rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed (returned {rate}) with data at {data_path!r}")
        self.sample_rate = int(rate)
        self._chunks: list[np.ndarray] = []

        def _callback(wav, numsamples, events):  # noqa: ANN001 - ctypes callback
            if numsamples > 0 and wav:
                self._chunks.append(np.ctypeslib.as_array(wav, shape=(numsamples,)).copy())
            return 0  # 0: continue synthesis

        self._callback = _SYNTH_CALLBACK(_callback)  # keep a reference: no GC while registered
        lib.espeak_SetSynthCallback(self._callback)
        self._lib = lib
        self.lock = threading.Lock()

    @classmethod
    def get(cls) -> _ESpeak:
        with cls._create_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def synth(self, text: str, voice: str, params: dict[int, int]) -> np.ndarray:
        lib = self._lib
        with self.lock:
            err = lib.espeak_SetVoiceByName(voice.encode())
            if err != _EE_OK:
                raise ValueError(f"eSpeak NG has no voice {voice!r} (error {err})")
            for pid, value in params.items():
                lib.espeak_SetParameter(pid, int(value), 0)
            if self._set_rand_seed is not None:
                self._set_rand_seed(zlib.crc32(text.encode()) & 0x7FFFFFFF)
            data = text.encode("utf-8")
            self._chunks = []
            err = lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _espeakCHARS_AUTO, None, None)
            if err != _EE_OK:
                raise RuntimeError(f"espeak_Synth failed with error {err} for {text!r}")
            lib.espeak_Synchronize()
            chunks, self._chunks = self._chunks, []
        if not chunks:
            raise RuntimeError(f"eSpeak NG produced no audio for {text!r} with voice {voice!r}")
        return np.concatenate(chunks)


def synthesize(
    text: str, *, voice: str, pitch: int, pitch_range: int, rate: int, volume: int
) -> tuple[np.ndarray, int]:
    """Speak ``text`` with eSpeak NG; return (float32 mono samples in [-1, 1], 22050).

    ``voice`` is an eSpeak voice name with an optional variant, e.g. ``"en-us+f3"``
    (variants m1-m8, f1-f5 ...). ``pitch`` and ``pitch_range`` are 0-100 (50 is the
    voice's default), ``rate`` is in words per minute (80-450, default 175) and
    ``volume`` 0-200 (100 is the default). Values outside are clipped.

    eSpeak NG keeps some state between utterances in one process, so repeated
    calls can differ slightly; see the module docstring.
    """
    engine = _ESpeak.get()
    params = {
        _espeakRATE: int(np.clip(rate, 80, 450)),
        _espeakVOLUME: int(np.clip(volume, 0, 200)),
        _espeakPITCH: int(np.clip(pitch, 0, 100)),
        _espeakRANGE: int(np.clip(pitch_range, 0, 100)),
    }
    pcm = engine.synth(text, voice, params)
    return (pcm.astype(np.float32) / np.float32(32768.0)), engine.sample_rate


# --------------------------------------------------------------------------
# Corpus facts: names, speakers, sentences
# --------------------------------------------------------------------------
TESS_WORDS: tuple[str, ...] = tuple(
    """back bar base bath bean beg bite boat bone book bought burn cab calm came cause chain
    chair chalk chat check cheek chief choice cool dab date dead death deep dime dip ditch
    dodge dog doll door fail fall far fat fit five food gap gas gaze germ get gin goal good
    goose gun half hall hash hate have haze hire hit hole home hurl jail jar join judge jug
    juice keen keep keg kick kill king kite knock late laud lean learn lease lid life limb
    live loaf long lore lose lot love luck make match merge mess met mill mob mode mood moon
    mop mouse nag name near neat nice note numb pad page pain pass pearl peg perch phone pick
    pike pole pool puff rag raid rain raise rat reach read red ring ripe road room rose rot
    rough rush said sail search seize sell shack shall shawl sheep shirt should shout size
    soap soup sour south sub such sure take talk tape team tell thin third thought thumb time
    tip tire ton tool tough turn vine voice void vote wag walk wash week wheat when which
    whip white wife wire witch yearn yes young youth""".split()
)
# emotion -> (label in the file name, folder suffix per speaker as in popular copies)
TESS_EMOTIONS: dict[str, tuple[str, dict[str, str]]] = {
    "angry": ("angry", {"OAF": "angry", "YAF": "angry"}),
    "disgust": ("disgust", {"OAF": "disgust", "YAF": "disgust"}),
    "fear": ("fear", {"OAF": "Fear", "YAF": "fear"}),
    "happy": ("happy", {"OAF": "happy", "YAF": "happy"}),
    "neutral": ("neutral", {"OAF": "neutral", "YAF": "neutral"}),
    "surprise": ("ps", {"OAF": "Pleasant_surprise", "YAF": "pleasant_surprised"}),
    "sadness": ("sad", {"OAF": "Sad", "YAF": "sad"}),
}
TESS_DATA_DIR = "TESS Toronto emotional speech set data"

SAVEE_SPEAKERS: tuple[str, ...] = tuple(savee.SPEAKERS)
# file-name codes as the parsers read them, inverted: the demo writes what they parse
SAVEE_CODES: dict[str, str] = {emotion: code for code, emotion in savee.EMOTION_CODES.items()}
SAVEE_SENTENCES: tuple[str, ...] = (
    "She had your dark suit in greasy wash water all year.",
    "Don't ask me to carry an oily rag like that.",
    "Will you tell me why?",
    "Who authorized the unlimited expense account?",
    "Destroy every file related to my audits.",
    "Please take this dirty table cloth to the cleaners for me.",
    "The small boy put the worm on the hook.",
    "Those musicians harmonize marvelously.",
    "A big goat idly ambled through the farmyard.",
    "Critical equipment needs proper maintenance.",
    "Pizzerias are convenient for a quick lunch.",
    "Cottage cheese with chives is delicious.",
    "The fish began to leap frantically on the surface of the small lake.",
    "Her right hand aches whenever the barometric pressure changes.",
    "Allow leeway here, but rationalize all errors.",
)

RAVDESS_EMOTIONS: dict[str, str] = {emotion: code for code, emotion in ravdess.EMOTION_CODES.items()}
RAVDESS_STATEMENTS: dict[str, str] = {code: f"{text}." for code, text in ravdess.STATEMENTS.items()}
RAVDESS_MIN_ACTORS = 4

CREMA_EMOTIONS: dict[str, str] = {emotion: code for code, emotion in crema.EMOTION_CODES.items()}
CREMA_SENTENCES: dict[str, str] = {code: f"{text}." for code, text in crema.SENTENCES.items()}
# the 48 male actors of CREMA-D (the parser's table); the other 43 of 1001-1091 are female
CREMA_MALE_ACTORS: frozenset[int] = crema.MALE_ACTORS
CREMA_ACTORS: tuple[int, ...] = tuple(range(1001, 1092))
CREMA_MIN_ACTORS = 6

# Upper bound on per_class given by the real naming schemes (RAVDESS neutral:
# 24 actors x 2 statements x 2 repetitions; SAVEE: two-digit numbers).
MAX_PER_CLASS = 96

_MALE_VARIANTS = ("m1", "m3", "m6", "m2", "m4", "m7", "m5", "m8")
_FEMALE_VARIANTS = ("f2", "f4", "f5", "f1", "f3")


# --------------------------------------------------------------------------
# Emotion prosody and voice quality
# --------------------------------------------------------------------------
# (mean, sd) of the eSpeak parameters per emotion; distributions overlap.
_PROSODY: dict[str, dict[str, tuple[float, float]]] = {
    "neutral": {"pitch": (45, 7), "range": (32, 9), "rate": (165, 12), "volume": (95, 10)},
    "calm": {"pitch": (40, 7), "range": (26, 9), "rate": (150, 12), "volume": (85, 10)},
    "angry": {"pitch": (58, 9), "range": (78, 11), "rate": (195, 16), "volume": (145, 14)},
    "happy": {"pitch": (70, 9), "range": (82, 10), "rate": (182, 15), "volume": (118, 12)},
    "fear": {"pitch": (76, 9), "range": (58, 13), "rate": (210, 16), "volume": (102, 12)},
    "sadness": {"pitch": (27, 8), "range": (16, 8), "rate": (135, 12), "volume": (74, 10)},
    "disgust": {"pitch": (31, 8), "range": (40, 12), "rate": (148, 13), "volume": (94, 12)},
    "surprise": {"pitch": (68, 9), "range": (93, 6), "rate": (176, 15), "volume": (118, 12)},
}
# Probability of ending the sentence with "?" / "!" (changes eSpeak's intonation tune).
_PUNCTUATION: dict[str, tuple[float, float]] = {
    "neutral": (0.0, 0.0),
    "calm": (0.0, 0.0),
    "angry": (0.0, 0.55),
    "happy": (0.05, 0.45),
    "fear": (0.15, 0.3),
    "sadness": (0.0, 0.0),
    "disgust": (0.05, 0.15),
    "surprise": (0.7, 0.15),
}
# Uniform (low, high) ranges of the voice-quality effects per emotion.
_QUALITY: dict[str, dict[str, tuple[float, float]]] = {
    #            tremolo depth, vibrato depth (fraction of F0), tilt gain, drive,
    #            breath level (x speech RMS), creak depth
    "neutral": {"trem": (0.0, 0.06), "vib": (0.0, 0.006), "tilt": (-0.2, 0.25), "drive": (0.0, 0.3),
                "breath": (0.0, 0.04), "creak": (0.0, 0.05)},
    "calm": {"trem": (0.0, 0.05), "vib": (0.0, 0.005), "tilt": (-0.35, 0.1), "drive": (0.0, 0.2),
             "breath": (0.02, 0.07), "creak": (0.0, 0.06)},
    "angry": {"trem": (0.0, 0.08), "vib": (0.0, 0.008), "tilt": (0.5, 1.4), "drive": (1.0, 2.6),
              "breath": (0.0, 0.04), "creak": (0.0, 0.08)},
    "happy": {"trem": (0.0, 0.1), "vib": (0.002, 0.012), "tilt": (0.15, 0.7), "drive": (0.0, 0.8),
              "breath": (0.0, 0.05), "creak": (0.0, 0.04)},
    "fear": {"trem": (0.15, 0.4), "vib": (0.012, 0.03), "tilt": (0.0, 0.5), "drive": (0.0, 0.5),
             "breath": (0.03, 0.11), "creak": (0.0, 0.06)},
    "sadness": {"trem": (0.0, 0.12), "vib": (0.0, 0.01), "tilt": (-0.65, -0.15), "drive": (0.0, 0.2),
                "breath": (0.08, 0.2), "creak": (0.0, 0.15)},
    "disgust": {"trem": (0.0, 0.08), "vib": (0.0, 0.008), "tilt": (-0.45, 0.15), "drive": (0.0, 0.6),
                "breath": (0.05, 0.15), "creak": (0.2, 0.5)},
    "surprise": {"trem": (0.0, 0.1), "vib": (0.0, 0.012), "tilt": (0.1, 0.6), "drive": (0.0, 0.6),
                 "breath": (0.0, 0.06), "creak": (0.0, 0.04)},
}
# Scale of the deviation from neutral for each intensity level.
_INTENSITY: dict[str, float] = {"normal": 0.85, "strong": 1.2, "LO": 0.6, "MD": 0.9, "HI": 1.25, "XX": 1.0}


def _speaker_profile(corpus: str, speaker: str, gender: str, index: int, age: str = "adult") -> dict[str, Any]:
    """A fixed voice for one speaker: eSpeak variant plus personal offsets.

    Independent of ``seed``: a speaker sounds the same in every demo corpus.
    """
    rng = np.random.default_rng(zlib.crc32(f"{corpus}/{speaker}".encode()))
    lang = "en" if corpus == "savee" else "en-us"  # SAVEE speakers are British
    variants = _MALE_VARIANTS if gender == "male" else _FEMALE_VARIANTS
    variant = variants[index % len(variants)]
    if age == "older":
        variant = "f1"  # eSpeak's female1 is an older voice (age 70)
    elif age == "younger":
        variant = "f3"
    return {
        "voice": f"{lang}+{variant}",
        "pitch_offset": float(rng.normal(0, 5)),
        "range_offset": float(rng.normal(0, 4)),
        "rate_factor": float(np.clip(rng.normal(1.0, 0.05), 0.88, 1.12)),
        "volume_offset": float(rng.normal(0, 5)),
    }


def _utterance_spec(
    rng: np.random.Generator,
    *,
    relpath: str,
    sentence: str,
    emotion: str,
    intensity: str,
    speaker: dict[str, Any],
    sample_rate: int,
) -> dict[str, Any]:
    """Draw the prosody, punctuation and post-processing of one file."""
    prosody = _PROSODY[emotion]
    neutral = _PROSODY["neutral"]
    k = 1.0 if emotion == "neutral" else _INTENSITY[intensity]
    values = {}
    for name, (mean, sd) in prosody.items():
        centre = neutral[name][0] + k * (mean - neutral[name][0])
        values[name] = centre + sd * float(rng.standard_normal())
    p_question, p_exclaim = _PUNCTUATION[emotion]
    u = float(rng.random())
    text = sentence.rstrip(".?!")
    if u < p_question:
        text += "?"
    elif u < p_question + p_exclaim:
        text += "!"
    else:
        text += "."
    quality = {name: float(rng.uniform(lo, hi)) for name, (lo, hi) in _QUALITY[emotion].items()}
    return {
        "relpath": relpath,
        "text": text,
        "emotion": emotion,
        "voice": speaker["voice"],
        "pitch": int(round(values["pitch"] + speaker["pitch_offset"])),
        "pitch_range": int(round(values["range"] + speaker["range_offset"])),
        "rate": int(round(values["rate"] * speaker["rate_factor"])),
        "volume": int(round(min(values["volume"] + speaker["volume_offset"], 175))),
        "quality": quality,
        "sample_rate": sample_rate,
        "seed": int(rng.integers(0, 2**63 - 1)),
    }


# --------------------------------------------------------------------------
# File plans per corpus (decided in the parent, from the seed only)
# --------------------------------------------------------------------------
def _corpus_rng(seed: int, corpus: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), CORPORA.index(corpus), GENERATOR_VERSION])


def _plan_tess(per_class: int, seed: int) -> list[dict[str, Any]]:
    rng = _corpus_rng(seed, "tess")
    sr = NATIVE_SAMPLE_RATES["tess"]
    speakers = {
        "OAF": _speaker_profile("tess", "OAF", "female", 0, age="older"),
        "YAF": _speaker_profile("tess", "YAF", "female", 1, age="younger"),
    }
    # As in TESS, each speaker says the same words in every emotion.
    n_words = math.ceil(per_class / 2)
    words = {spk: [str(w) for w in rng.choice(TESS_WORDS, size=n_words, replace=False)] for spk in speakers}
    specs = []
    for e_idx, (emotion, (label, folders)) in enumerate(TESS_EMOTIONS.items()):
        used = dict.fromkeys(speakers, 0)
        for i in range(per_class):
            spk = ("OAF", "YAF")[(e_idx + i) % 2]  # rotate so that small corpora hold both
            word = words[spk][used[spk]]
            used[spk] += 1
            relpath = f"{TESS_DATA_DIR}/{spk}_{folders[spk]}/{spk}_{word}_{label}.wav"
            specs.append(
                _utterance_spec(rng, relpath=relpath, sentence=f"Say the word {word}.", emotion=emotion,
                                intensity="XX", speaker=speakers[spk], sample_rate=sr)
            )
    return specs


def _plan_savee(per_class: int, seed: int) -> list[dict[str, Any]]:
    rng = _corpus_rng(seed, "savee")
    sr = NATIVE_SAMPLE_RATES["savee"]
    speakers = {spk: _speaker_profile("savee", spk, "male", i) for i, spk in enumerate(SAVEE_SPEAKERS)}
    specs = []
    for e_idx, (emotion, code) in enumerate(SAVEE_CODES.items()):
        n = 2 * per_class if emotion == "neutral" else per_class  # neutral is doubled in SAVEE
        counters = dict.fromkeys(SAVEE_SPEAKERS, 0)
        for i in range(n):
            spk = SAVEE_SPEAKERS[(e_idx * per_class + i) % len(SAVEE_SPEAKERS)]
            counters[spk] += 1
            sentence = SAVEE_SENTENCES[int(rng.integers(len(SAVEE_SENTENCES)))]
            relpath = f"AudioData/{spk}/{code}{counters[spk]:02d}.wav"
            specs.append(
                _utterance_spec(rng, relpath=relpath, sentence=sentence, emotion=emotion, intensity="XX",
                                speaker=speakers[spk], sample_rate=sr)
            )
    return specs


def _plan_ravdess(per_class: int, seed: int) -> list[dict[str, Any]]:
    rng = _corpus_rng(seed, "ravdess")
    sr = NATIVE_SAMPLE_RATES["ravdess"]
    # neutral has 4 combinations per actor (1 intensity x 2 statements x 2 repetitions)
    n_actors = min(24, max(RAVDESS_MIN_ACTORS, math.ceil(per_class / 4)))
    actors = list(range(1, n_actors + 1))
    profiles = {
        a: _speaker_profile("ravdess", f"{a:02d}", "male" if a % 2 else "female", (a - 1) // 2) for a in actors
    }
    specs = []
    for e_idx, (emotion, code) in enumerate(RAVDESS_EMOTIONS.items()):
        intensities = ("01",) if emotion == "neutral" else ("01", "02")
        combos = [(i, s, r) for i in intensities for s in RAVDESS_STATEMENTS for r in ("01", "02")]
        per_actor = {a: [combos[j] for j in rng.permutation(len(combos))] for a in actors}
        used = dict.fromkeys(actors, 0)
        for k in range(per_class):
            actor = actors[(e_idx * per_class + k) % n_actors]  # rotate over the actors
            intensity, statement, repetition = per_actor[actor][used[actor]]
            used[actor] += 1
            relpath = f"Actor_{actor:02d}/03-01-{code}-{intensity}-{statement}-{repetition}-{actor:02d}.wav"
            specs.append(
                _utterance_spec(rng, relpath=relpath, sentence=RAVDESS_STATEMENTS[statement], emotion=emotion,
                                intensity="normal" if intensity == "01" else "strong",
                                speaker=profiles[actor], sample_rate=sr)
            )
    return specs


def _crema_actors(n: int) -> list[int]:
    """``n`` real CREMA-D actor ids, alternating male and female from the start of the range."""
    males = [a for a in CREMA_ACTORS if a in CREMA_MALE_ACTORS]
    females = [a for a in CREMA_ACTORS if a not in CREMA_MALE_ACTORS]
    out = []
    for i in range(n):
        out.append(males[i // 2] if i % 2 == 0 else females[i // 2])
    return out


def _plan_crema(per_class: int, seed: int) -> list[dict[str, Any]]:
    rng = _corpus_rng(seed, "crema")
    sr = NATIVE_SAMPLE_RATES["crema"]
    # at least 12 (neutral: one file per sentence) combinations per actor and emotion
    n_actors = max(CREMA_MIN_ACTORS, math.ceil(per_class / 12))
    actors = _crema_actors(n_actors)
    profiles = {
        a: _speaker_profile("crema", str(a), "male" if a in CREMA_MALE_ACTORS else "female", i // 2)
        for i, a in enumerate(actors)
    }
    specs = []
    for e_idx, (emotion, code) in enumerate(CREMA_EMOTIONS.items()):
        combos = []
        for sent in CREMA_SENTENCES:
            if sent == "IEO" and emotion != "neutral":
                combos += [(sent, lvl) for lvl in ("LO", "MD", "HI")]
            else:
                combos.append((sent, "XX"))
        per_actor = {a: [combos[j] for j in rng.permutation(len(combos))] for a in actors}
        used = dict.fromkeys(actors, 0)
        for k in range(per_class):
            actor = actors[(e_idx * per_class + k) % n_actors]  # rotate over the actors
            sent, level = per_actor[actor][used[actor]]
            used[actor] += 1
            relpath = f"AudioWAV/{actor}_{sent}_{code}_{level}.wav"
            specs.append(
                _utterance_spec(rng, relpath=relpath, sentence=CREMA_SENTENCES[sent], emotion=emotion,
                                intensity=level, speaker=profiles[actor], sample_rate=sr)
            )
    return specs


_PLANNERS = {"tess": _plan_tess, "savee": _plan_savee, "ravdess": _plan_ravdess, "crema": _plan_crema}


# --------------------------------------------------------------------------
# Post-processing (numpy only, deterministic given the spec's seed)
# --------------------------------------------------------------------------
def _smooth(x: np.ndarray, n: int) -> np.ndarray:
    """Centred moving average over ``n`` samples (same length, zero padded)."""
    n = max(1, int(n))
    if n == 1:
        return x.copy()
    c = np.concatenate([[0.0], np.cumsum(np.concatenate([np.zeros(n // 2), x, np.zeros(n - n // 2)]))])
    return (c[n : n + len(x)] - c[: len(x)]) / n


def _fast_len(n: int) -> int:
    """Smallest 2^a * 3^b >= n (cheap FFT sizes)."""
    best = 1 << max(0, (n - 1).bit_length())
    p3 = 1
    while p3 < best:
        m = p3 * (1 << max(0, math.ceil(math.log2(n / p3))))
        best = min(best, m)
        p3 *= 3
    return best


def _postprocess(x: np.ndarray, sr: int, spec: dict[str, Any]) -> np.ndarray:
    """Add emotion voice-quality cues, silence, noise; return float64 at ``sr``."""
    rng = np.random.default_rng(spec["seed"])
    q = spec["quality"]
    x = x.astype(np.float64)
    n = len(x)
    t = np.arange(n) / sr
    rms = float(np.sqrt(np.mean(x**2))) + 1e-9

    # vibrato / jitter: a slowly varying fractional delay (frequency modulation)
    if q["vib"] > 0:
        f_vib = rng.uniform(4.5, 8.0)
        depth = q["vib"] * sr / (2 * np.pi * f_vib)  # samples
        wobble = np.sin(2 * np.pi * f_vib * t + rng.uniform(0, 2 * np.pi))
        jitter = _smooth(rng.standard_normal(n), sr // 40)
        jitter /= np.max(np.abs(jitter)) + 1e-9
        pos = np.arange(n) + depth * (wobble + 0.3 * jitter)
        x = np.interp(np.clip(pos, 0, n - 1), np.arange(n), x)

    # spectral tilt: boost (>0) or cut (<0) above ~1.5 kHz
    nfft = _fast_len(n)
    spectrum = np.fft.rfft(x, nfft)
    f = np.fft.rfftfreq(nfft, 1 / sr)
    fc = rng.uniform(1200, 2000)
    tilt = np.clip(q["tilt"], -0.9, None)
    spectrum *= 1.0 + tilt * (f**2 / (f**2 + fc**2))
    x = np.fft.irfft(spectrum, nfft)[:n]

    # saturation (harshness) for high drive
    if q["drive"] > 0:
        g = 1.0 + q["drive"]
        peak = np.max(np.abs(x)) + 1e-9
        x = np.tanh(g * x / peak) / np.tanh(g) * peak

    envelope = _smooth(np.abs(x), int(0.02 * sr))
    envelope /= np.max(envelope) + 1e-9

    # tremolo: amplitude modulation at 4-8 Hz
    if q["trem"] > 0:
        f_trem = rng.uniform(4.0, 8.0)
        x = x * (1.0 - q["trem"] * 0.5 * (1 + np.sin(2 * np.pi * f_trem * t + rng.uniform(0, 2 * np.pi))))

    # creak: irregular low-rate glottal pulses gating the signal
    if q["creak"] > 0:
        f_creak = rng.uniform(25, 45)
        wander = np.clip(1 + 2.5 * _smooth(rng.standard_normal(n), sr // 100), 0.3, None)  # ~17 % jitter
        phase = np.cumsum(f_creak * wander / sr)
        pulses = (np.mod(phase, 1.0) < 0.35).astype(np.float64)
        pulses = _smooth(pulses, int(sr * 0.002))
        x = x * (1.0 - q["creak"] * (1.0 - pulses))

    # breathiness: high-passed noise following the speech envelope
    if q["breath"] > 0:
        noise = np.fft.rfft(rng.standard_normal(nfft))
        noise *= f**2 / (f**2 + 1500.0**2)
        noise = np.fft.irfft(noise, nfft)[:n]
        noise /= np.sqrt(np.mean(noise**2)) + 1e-9
        x = x + q["breath"] * rms * 2.0 * envelope * noise

    # recording level, silence around the utterance, background noise
    x *= 10 ** (rng.uniform(-5.0, 5.0) / 20)
    lead = np.zeros(int(rng.uniform(0.08, 0.35) * sr))
    trail = np.zeros(int(rng.uniform(0.10, 0.40) * sr))
    x = np.concatenate([lead, x, trail])
    floor = 10 ** (rng.uniform(-62, -48) / 20)
    return x + floor * _smooth(rng.standard_normal(len(x)), 2) * 1.4


def _render(spec: dict[str, Any]) -> np.ndarray:
    """Synthesise one spec; return int16 samples at the corpus's native rate."""
    import soxr

    audio, sr = synthesize(
        spec["text"], voice=spec["voice"], pitch=spec["pitch"], pitch_range=spec["pitch_range"],
        rate=spec["rate"], volume=spec["volume"],
    )
    y = _postprocess(audio, sr, spec)
    target = int(spec["sample_rate"])
    if target != sr:
        y = soxr.resample(y, sr, target, quality="HQ")
    peak = float(np.max(np.abs(y)))
    if peak > 0.97:  # limit after resampling (its overshoot included): never clip
        y = y * (0.97 / peak)
    return np.round(np.clip(y, -1.0, 32767 / 32768) * 32768).astype(np.int16)


def _worker_main() -> None:
    """Entry point of a worker process: read a job (JSON) on stdin, write its wavs.

    Prints one line per written file so that the parent can show progress.
    """
    import soundfile as sf

    job = json.load(sys.stdin)
    root = Path(job["root"])
    for spec in job["files"]:
        pcm = _render(spec)
        path = root / spec["relpath"]
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), pcm, int(spec["sample_rate"]), subtype="PCM_16", format="WAV")
        sys.stdout.write("1\n")
        sys.stdout.flush()


# --------------------------------------------------------------------------
# Generator
# --------------------------------------------------------------------------
def _marker_params(per_class: int, seed: int, corpora: Sequence[str]) -> dict[str, Any]:
    return {
        "generator": "speech_emotion.demo_corpus",
        "version": GENERATOR_VERSION,
        "per_class": int(per_class),
        "seed": int(seed),
        "corpora": sorted(corpora),
    }


def _read_marker(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _remove_previous(out: Path, marker: dict[str, Any] | None) -> None:
    """Delete the files a previous generation wrote (its marker lists them), and nothing else."""
    if marker is None:
        return
    if "written" not in marker:  # a marker of an older generator: its folders held only its own files
        for d in CORPUS_DIRS.values():
            shutil.rmtree(out / d, ignore_errors=True)
        return
    for rel in marker["written"]:
        (out / rel).unlink(missing_ok=True)
    for d in CORPUS_DIRS.values():  # folders left empty, deepest first
        root = out / d
        if root.is_dir():
            for folder in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
                if not any(folder.iterdir()):
                    folder.rmdir()


def _run_jobs(jobs: list[tuple[Path, list[dict[str, Any]]]], total: int, progress: bool) -> None:
    """Run each job in a fresh Python process (fresh eSpeak state), a few at a time."""
    from tqdm import tqdm

    package_root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = package_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    code = "from speech_emotion.demo_corpus import _worker_main; _worker_main()"
    slots = threading.Semaphore(max(1, min(len(jobs), os.cpu_count() or 1)))
    lock = threading.Lock()
    errors: list[str] = []
    procs: list[subprocess.Popen] = []

    with tqdm(total=total, desc="demo corpus", unit="file", disable=not progress) as bar:

        def run_one(root: Path, files: list[dict[str, Any]]) -> None:
            with slots:
                if errors:
                    return
                try:
                    with tempfile.TemporaryFile() as err:
                        proc = subprocess.Popen(
                            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=err, env=env, text=True,
                        )
                        with lock:
                            procs.append(proc)
                        assert proc.stdin is not None and proc.stdout is not None
                        proc.stdin.write(json.dumps({"root": str(root), "files": files}))
                        proc.stdin.close()
                        for _ in proc.stdout:
                            with lock:
                                bar.update(1)
                        rc = proc.wait()
                        if rc != 0:
                            err.seek(0)
                            tail = err.read().decode(errors="replace")[-3000:]
                            raise RuntimeError(f"worker exited with status {rc}:\n{tail}")
                except Exception as exc:  # reported by the caller's thread
                    with lock:
                        errors.append(f"demo corpus worker writing under {root} failed: {exc}")

        threads = [threading.Thread(target=run_one, args=job, daemon=True) for job in jobs]
        try:
            for th in threads:
                th.start()
            for th in threads:
                th.join()
        except BaseException:  # e.g. KeyboardInterrupt: do not leave workers behind
            errors.append("interrupted")
            with lock:
                for proc in procs:
                    if proc.poll() is None:
                        proc.kill()
            raise
    if errors:
        raise RuntimeError(errors[0])


def generate_demo_corpus(
    out: str | Path,
    per_class: int = 6,
    seed: int = 0,
    corpora: Sequence[str] = CORPORA,
    progress: bool = True,
) -> dict[str, Path]:
    """Write a synthetic corpus under ``out`` in the real layouts of the corpora.

    ``per_class`` is the number of files per class *per corpus* (SAVEE neutral
    gets twice as many, as in SAVEE; RAVDESS also gets calm; CREMA-D has no
    surprise). Returns ``{"tess": out/TESS, "savee": out/SAVEE, "ravdess":
    out/RAVDESS, "crema": out/CREMA-D}`` (for the requested corpora): the roots
    a user would pass as ``--tess`` etc.

    A marker ``out/DEMO_CORPUS.json`` records the parameters and every file the
    generator writes; when it matches (and those files are all there) nothing is
    rewritten. A previous demo corpus with other parameters is replaced by
    deleting only the files its marker lists: files a user added beside them
    stay (and become part of the corpus, as a retraining run expects). A
    non-demo folder in the way is never deleted (``FileExistsError``).

    Generation holds an inter-process lock on ``out``: a second run (two
    pipeline runs started together) waits, then finds the finished corpus.
    """
    corpora = tuple(dict.fromkeys(corpora))  # dedupe, keep order
    unknown = [c for c in corpora if c not in CORPUS_DIRS]
    if unknown or not corpora:
        raise ValueError(f"unknown corpora {unknown}; choose among {list(CORPORA)}")
    per_class = int(per_class)
    if not 1 <= per_class <= MAX_PER_CLASS:
        raise ValueError(f"per_class must be between 1 and {MAX_PER_CLASS}, got {per_class}")
    out = Path(out).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock

    with FileLock(str(out / LOCK_NAME)):
        return _generate_locked(out, per_class, seed, corpora, progress)


def _generate_locked(out: Path, per_class: int, seed: int, corpora: tuple[str, ...], progress: bool) -> dict[str, Path]:
    roots = {c: out / CORPUS_DIRS[c] for c in CORPORA if c in corpora}
    marker_path = out / MARKER_NAME
    params = _marker_params(per_class, seed, corpora)

    owned = marker_path.exists()  # a demo corpus (complete or interrupted) lives here
    marker = _read_marker(marker_path) if owned else None
    if marker is not None and marker.get("complete") and {k: marker.get(k) for k in params} == params:
        if marker.get("written") and all((out / rel).is_file() for rel in marker["written"]):
            return roots

    if not owned:
        in_the_way = [r for r in (out / d for d in CORPUS_DIRS.values()) if r.exists() and any(r.iterdir())]
        if in_the_way:
            raise FileExistsError(
                f"{in_the_way[0]} exists and is not a demo corpus (no {marker_path}); "
                "choose an empty output folder"
            )
    plans = {c: _PLANNERS[c](per_class, seed) for c in roots}
    written = [f"{CORPUS_DIRS[c]}/{spec['relpath']}" for c, specs in plans.items() for spec in specs]
    _remove_previous(out, marker)
    # listed before writing, so that an interrupted run's files are known to the next one
    _write_json_atomic(marker_path, {**params, "complete": False, "written": written})

    jobs: list[tuple[Path, list[dict[str, Any]]]] = []
    for c, specs in plans.items():
        for i in range(0, len(specs), _FILES_PER_JOB):
            jobs.append((roots[c], specs[i : i + _FILES_PER_JOB]))
    total = sum(len(s) for s in plans.values())
    _run_jobs(jobs, total, progress)

    missing = [rel for rel in written if not (out / rel).is_file()]
    if missing:
        raise RuntimeError(f"demo corpus incomplete: {len(missing)} of {len(written)} files missing, e.g. {missing[0]}")
    _write_json_atomic(
        marker_path,
        {
            **params,
            "complete": True,
            "files": total,
            "files_per_corpus": {c: len(plans[c]) for c in roots},
            "written": written,
            "roots": {c: CORPUS_DIRS[c] for c in roots},
            "sample_rates": {c: NATIVE_SAMPLE_RATES[c] for c in roots},
        },
    )
    return roots
