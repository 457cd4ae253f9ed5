"""``python -m engine serve --data DIR [--host 127.0.0.1] [--port 8600]`` (registered by engine/cli.py)."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from engine.errors import InputError, Problem

log = logging.getLogger(__name__)


def _serve(args: argparse.Namespace) -> dict[str, Any]:
    import uvicorn

    from engine.api import ServiceParams, create_app
    from engine.governance import api_tokens

    try:
        source, entries = api_tokens()  # nothing is served without tokens: refuse to start
    except PermissionError as exc:
        raise InputError([Problem("environment", None, "OR_API_TOKENS", str(exc))]) from exc
    if not entries:
        raise InputError([Problem("environment", None, "OR_API_TOKENS", "no API token is configured")])
    if not 0 < args.port < 65536:
        raise InputError([Problem("command line", None, "--port", f"must be within 1..65535, got {args.port}")])
    try:
        params = ServiceParams(data_dir=args.data, db_url=args.db, hospital_id=args.name, models_dir=args.models,
                               event_solver=args.event_solver, event_time_limit_s=args.event_time_limit, hl7_drop_dir=args.hl7_drop)
    except ValueError as exc:
        raise InputError([Problem("command line", None, None, str(exc))]) from exc
    try:
        app = create_app(params)
    except (PermissionError, ValueError) as exc:  # OR_DROP_TOKEN, OR_AMQP_TOKEN / OR_AMQP_URL / OR_AMQP_QUEUE
        var = next((v for v in ("OR_DROP_TOKEN", "OR_AMQP_TOKEN", "OR_AMQP_URL", "OR_AMQP_QUEUE") if v in str(exc)), None)
        raise InputError([Problem("environment", None, var, str(exc))]) from exc
    log.warning("serving %s on http://%s:%d (tokens from %s; docs at /docs)", app.state.service.hospital_id, args.host,
                args.port, source)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return {"host": args.host, "port": args.port}


def add_serve_parser(sub: Any) -> argparse.ArgumentParser:
    help_ = "Serve the API (FastAPI; OpenAPI docs at /docs): schedules, plan jobs, events, FHIR, HL7, iCalendar."
    s = sub.add_parser("serve", help=help_, description=help_ + " Tokens: OR_API_TOKENS=\"TOKEN:USER:ROLE[,...]\" or "
                                                               "OR_API_TOKENS_FILE (hashes). See docs/api.md.")
    s.set_defaults(func=_serve)
    s.add_argument("--json", type=Path, metavar="PATH", help="write the machine-readable result here (on exit)")
    s.add_argument("--data", type=Path, required=True, metavar="DIR", help="the hospital folder")
    s.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: loopback only)")
    s.add_argument("--port", type=int, default=8600)
    s.add_argument("--db", default=None, metavar="URL", help="store URL (default: DATABASE_URL or the embedded SQLite file)")
    s.add_argument("--name", default=None, help="hospital id (default: the folder name)")
    s.add_argument("--models", type=Path, default=None, metavar="DIR", help="model registry (default: var/models)")
    s.add_argument("--event-solver", choices=["highs", "glpk", "rules"], default="highs", help="solver of event re-plans")
    s.add_argument("--event-time-limit", type=float, default=10.0, metavar="S", help="time limit of an event re-plan")
    s.add_argument("--hl7-drop", type=Path, default=None, metavar="DIR",
                   help="also read HL7 messages (*.hl7) from this folder, as the user of the OR_DROP_TOKEN token; "
                        "ACKs in DIR/ack, messages moved to DIR/done or DIR/error")
    return s
