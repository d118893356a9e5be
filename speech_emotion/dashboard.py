"""The ZenML dashboard on this project's store, without reconnecting the client.

``zenml login --local`` starts ZenML's local server and then connects the client
to it, which rewrites the store configuration under ``ZENML_CONFIG_PATH``. Here
the same local server deployer (``zenml.zen_server.deploy``) only deploys and
removes the daemon: it serves the client's own SQLite database, and the client
keeps talking to that database directly, so pipeline runs work the same with or
without the dashboard. A thin adapter; ZenML is imported inside the functions.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8237  # ZenML's default; MLflow's UI (`ser mlflow-ui`) stays on 5000


@dataclass(frozen=True)
class Dashboard:
    url: str
    log_file: str | None


def _deployer():
    from zenml.zen_server.deploy import LocalServerDeployer

    return LocalServerDeployer()


def running() -> Dashboard | None:
    """The local dashboard of this store, if one is deployed and answering."""
    from zenml.zen_server.deploy.exceptions import ServerDeploymentNotFoundError

    try:
        server = _deployer().get_server()
    except ServerDeploymentNotFoundError:
        return None
    if server.status is None or not server.status.url:
        return None
    return Dashboard(server.status.url, _log_file())


def _log_file() -> str | None:
    from zenml.zen_server.deploy.daemon.daemon_zen_server import DaemonZenServer

    service = DaemonZenServer.get_service()
    return service.status.log_file if service is not None else None


def start(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, timeout: int = 120) -> Dashboard:
    """Deploy (or re-deploy on a new address) the local daemon server; the client is not connected."""
    from zenml.enums import ServerProviderType
    from zenml.zen_server.deploy import LocalServerDeploymentConfig

    config = LocalServerDeploymentConfig(provider=ServerProviderType.DAEMON, ip_address=host, port=port)
    server = _deployer().deploy_server(config, timeout=timeout)
    if server.status is None or not server.status.url:
        raise RuntimeError(f"the ZenML server did not come up on {host}:{port}; see {_log_file()}")
    return Dashboard(server.status.url, _log_file())


def stop(timeout: int = 60) -> bool:
    """Stop and remove the local daemon server; False when none was deployed."""
    from zenml.zen_server.deploy.exceptions import ServerDeploymentNotFoundError

    deployer = _deployer()
    try:
        deployer.get_server()
    except ServerDeploymentNotFoundError:
        return False
    deployer.remove_server(timeout=timeout)
    return True
