"""MLflow's tracking REST API (https://mlflow.org/docs/latest/rest-api.html), the calls a run logger makes:
experiments get-by-name / create, runs create / log-batch / update / get. State in memory; ids are counters.
Errors as MLflow sends them: ``{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": ...}`` with 404 (or 400
``INVALID_PARAMETER_VALUE``)."""

from __future__ import annotations

import itertools
from typing import Any

from shared.local.sandbox.base import Emulator, Request, Response

API = "/api/2.0/mlflow"


class MlflowEmulator(Emulator):
    def __init__(self) -> None:
        self.experiments: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        super().__init__()

    def settings_env(self) -> dict[str, str]:
        return {"MLFLOW_TRACKING_URI": self.base_url}

    def error_body(self, status: int, code: str, message: str) -> Any:
        return {"error_code": code, "message": message}

    def routes(self) -> None:
        self.route("GET", API + r"/experiments/get-by-name", self.experiment_by_name)
        self.route("POST", API + r"/experiments/create", self.create_experiment)
        self.route("POST", API + r"/runs/create", self.create_run)
        self.route("POST", API + r"/runs/log-batch", self.log_batch)
        self.route("POST", API + r"/runs/update", self.update_run)
        self.route("GET", API + r"/runs/get", self.get_run)

    def _bad(self, message: str) -> Response:
        return Response(400, self.error_body(400, "INVALID_PARAMETER_VALUE", message))

    def _missing(self, message: str) -> Response:
        return Response(404, self.error_body(404, "RESOURCE_DOES_NOT_EXIST", message))

    def experiment_by_name(self, request: Request) -> Response:
        with self.lock:
            for exp in self.experiments.values():
                if exp["name"] == request.query.get("experiment_name"):
                    return Response(200, {"experiment": exp})
        return self._missing(f"Could not find experiment with name '{request.query.get('experiment_name')}'")

    def create_experiment(self, request: Request) -> Response:
        name = (request.json() or {}).get("name")
        if not name:
            return self._bad("Missing value for required parameter 'name'.")
        with self.lock:
            if any(e["name"] == name for e in self.experiments.values()):
                return Response(400, self.error_body(400, "RESOURCE_ALREADY_EXISTS",
                                                     f"Experiment '{name}' already exists."))
            exp_id = str(next(self._ids))
            self.experiments[exp_id] = {"experiment_id": exp_id, "name": name, "lifecycle_stage": "active"}
        return Response(200, {"experiment_id": exp_id})

    def create_run(self, request: Request) -> Response:
        body = request.json() or {}
        with self.lock:
            if body.get("experiment_id") not in self.experiments:
                return self._missing(f"No Experiment with id={body.get('experiment_id')} exists")
            run_id = f"run{next(self._ids):06d}"
            run = {"info": {"run_id": run_id, "experiment_id": body["experiment_id"], "status": "RUNNING",
                            "start_time": body.get("start_time"), "run_name": body.get("run_name")},
                   "data": {"params": [], "metrics": [], "tags": list(body.get("tags") or [])}}
            self.runs[run_id] = run
        return Response(200, {"run": run})

    def log_batch(self, request: Request) -> Response:
        body = request.json() or {}
        with self.lock:
            run = self.runs.get(body.get("run_id"))
            if run is None:
                return self._missing(f"Run '{body.get('run_id')}' not found")
            if run["info"]["status"] != "RUNNING":
                return self._bad(f"The run {body['run_id']} must be in the 'active' state.")
            for key in ("params", "metrics", "tags"):
                for item in body.get(key) or []:
                    if not isinstance(item, dict) or "key" not in item:
                        return self._bad(f"Invalid value for {key}")
                run["data"][key].extend(body.get(key) or [])
        return Response(200, {})

    def update_run(self, request: Request) -> Response:
        body = request.json() or {}
        with self.lock:
            run = self.runs.get(body.get("run_id"))
            if run is None:
                return self._missing(f"Run '{body.get('run_id')}' not found")
            run["info"].update({k: body[k] for k in ("status", "end_time") if k in body})
        return Response(200, {"run_info": run["info"]})

    def get_run(self, request: Request) -> Response:
        with self.lock:
            run = self.runs.get(request.query.get("run_id", ""))
        return Response(200, {"run": run}) if run else self._missing("Run not found")
