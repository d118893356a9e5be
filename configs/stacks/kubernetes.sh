#!/usr/bin/env bash
# Recipe: a ZenML stack on Kubernetes (one pod per step) with object storage, a container registry,
# an image builder, a remote MLflow tracking server and a GPU step operator. Read it, set the
# variables, then run the lines you need (each `register` is idempotent only by name: rerunning one
# that exists fails with "already exists"; use `update` instead).
#
# On the machine that submits runs (this project installed in .venv):
#   pip install "kubernetes>=21.7,<26"      # what ZenML's kubernetes integration requires (or: pip install -e '.[k8s]')
#   kubectl config get-contexts             # the context the orchestrator and step operator use
# Then run with:
#   zenml pipeline run pipelines.training.training_pipeline -c configs/stacks/kubernetes.yaml
set -euo pipefail

CONTEXT=${CONTEXT:-my-cluster}                      # kubectl context
NAMESPACE=${NAMESPACE:-zenml}                       # namespace the step pods run in (kubectl create namespace zenml)
BUCKET=${BUCKET:-s3://my-ser-bucket}                # corpora, feature cache, ZenML artifacts, MLflow artifacts
REGISTRY=${REGISTRY:-123456789012.dkr.ecr.eu-west-1.amazonaws.com}   # where images are pushed
MLFLOW_URI=${MLFLOW_URI:-https://mlflow.example.com}                 # a remote MLflow tracking server

# --- object storage: S3 (or GCS, below). Credentials: a ZenML secret (or a service connector:
#     `zenml service-connector register aws --type aws --auto-configure` and `zenml artifact-store connect`).
zenml secret create s3_credentials --aws_access_key_id="$AWS_ACCESS_KEY_ID" --aws_secret_access_key="$AWS_SECRET_ACCESS_KEY"
zenml artifact-store register ser_s3 --flavor=s3 --path="$BUCKET/zenml" \
    --key='{{s3_credentials.aws_access_key_id}}' --secret='{{s3_credentials.aws_secret_access_key}}'
# S3-compatible stores (MinIO, Ceph): add --client_kwargs='{"endpoint_url": "https://minio.example.com"}'
# GCS instead:  zenml artifact-store register ser_gcs --flavor=gcp --path=gs://my-ser-bucket/zenml

# --- a container registry and an image builder: ZenML builds one image of this project
#     (configs/stacks/kubernetes.yaml: settings.docker) and pushes it here; Kaniko builds inside the cluster,
#     so the submitting machine needs no Docker daemon (with Docker: --flavor=local instead).
zenml container-registry register ser_registry --flavor=aws --uri="$REGISTRY"   # or --flavor=default / gcp / azure
zenml image-builder register ser_kaniko --flavor=kaniko --kubernetes_context="$CONTEXT" --kubernetes_namespace="$NAMESPACE"

# --- the remote MLflow tracking server (its artifacts on the bucket: `mlflow server ... --artifacts-destination
#     $BUCKET/mlflow`). ZenML's MLflow tracker needs credentials for a remote server: a token or user and password.
zenml secret create mlflow_credentials --username="$MLFLOW_TRACKING_USERNAME" --password="$MLFLOW_TRACKING_PASSWORD"
zenml experiment-tracker register ser_mlflow --flavor=mlflow --tracking_uri="$MLFLOW_URI" \
    --tracking_username='{{mlflow_credentials.username}}' --tracking_password='{{mlflow_credentials.password}}'

# --- the orchestrator: every step in its own pod; independent steps (the three feature extractions, the
#     families' tuning and training) run at the same time.
zenml orchestrator register ser_k8s --flavor=kubernetes --kubernetes_context="$CONTEXT" --kubernetes_namespace="$NAMESPACE"

# --- GPUs. Either (a) the GPU steps' pods ask the orchestrator for a GPU: configs/stacks/kubernetes.yaml sets
#     parameters.resources.gpu (gpu_count: 1, node selector and toleration of the GPU node pool); or (b) a step
#     operator runs them: register it and set parameters.resources.gpu.step_operator: ser_gpu.
zenml step-operator register ser_gpu --flavor=kubernetes --kubernetes_context="$CONTEXT" --kubernetes_namespace="$NAMESPACE"

zenml stack register ser_k8s -o ser_k8s -a ser_s3 -c ser_registry -i ser_kaniko -e ser_mlflow -s ser_gpu --set

# The pods read the corpora and the feature cache from $BUCKET themselves (fsspec/s3fs, not through ZenML):
# give them credentials, e.g. an IAM role for the namespace's service account (settings.orchestrator
# service_account_name), or a Kubernetes secret with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY that
# configs/stacks/kubernetes.yaml's pod settings load (env_from):
#   kubectl -n "$NAMESPACE" create secret generic aws-credentials \
#       --from-literal=AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" --from-literal=AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY"
# Upload the corpora once (the same layout as on disk; ids and fingerprints do not change):
#   aws s3 sync /data/RAVDESS "$BUCKET/corpora/RAVDESS"    # likewise TESS, SAVEE, CREMA-D
