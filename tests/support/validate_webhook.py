"""Validates webhook bodies (JSON files named on the command line) against the strict
Alertmanager webhook v4 schema beside this script; prints each error and exits 1 on any."""
import json
import pathlib
import sys

import jsonschema

schema = json.loads((pathlib.Path(__file__).parent / "alertmanager-webhook-v4.schema.json").read_text())
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)
failed = False
for path in sys.argv[1:]:
    body = json.loads(pathlib.Path(path).read_text())
    for error in validator.iter_errors(body):
        failed = True
        print(f"{path}: {'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}")
sys.exit(1 if failed else 0)
