"""The real thing, as a long-lived judge for the TypeScript tests (test-only; never shipped in the operator image).

Reads one JSON request per line on stdin and answers one JSON line on stdout, so a test pays Python's and Axolotl's
imports (~20 s) once for thousands of questions:

  {"op": "load", "texts": [...]}      yaml.safe_load of each text (how Axolotl's load_cfg reads a config file)
  {"op": "validate", "items": [...]}  axolotl.utils.config.validate_config(DictDefault(cfg)) on each item, where an
                                      item is {"text": YAML} (read with safe_load first, as load_cfg does) or
                                      {"config": tagged JSON}
  {"op": "schema"}                    AxolotlInputConfig.model_json_schema() and the versions it came from
  {"op": "validators"}                every pydantic validator in axolotl/utils/schemas/*.py and the config keys it
                                      reads (data.get("k"), data["k"], self.k), from the installed source

Values are answered in a tagged JSON so that what JSON cannot say is not lost: non-finite floats are
{"$float": "inf"|"-inf"|"nan"}, dates and datetimes {"$timestamp": iso}, mapping keys as json.dumps writes them.
"""
import datetime
import io
import json
import logging
import math
import os
import sys
import warnings


def key(k):
    if isinstance(k, str):
        return k
    if k is None:
        return "null"
    if isinstance(k, bool):
        return "true" if k else "false"
    if isinstance(k, (datetime.date, datetime.datetime)):
        return str(k)
    if isinstance(k, float) and not math.isfinite(k):
        return "NaN" if math.isnan(k) else ("Infinity" if k > 0 else "-Infinity")
    if isinstance(k, (int, float)):
        return repr(k)
    raise TypeError(f"unsupported key type {type(k).__name__}")


def tagged(v):
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        if math.isnan(v):
            return {"$float": "nan"}
        if math.isinf(v):
            return {"$float": "inf" if v > 0 else "-inf"}
        return v
    if isinstance(v, (datetime.date, datetime.datetime)):
        return {"$timestamp": v.isoformat()}
    if isinstance(v, dict):
        return {key(k): tagged(x) for k, x in v.items()}
    if isinstance(v, list):
        return [tagged(x) for x in v]
    return {"$unsupported": type(v).__name__}


def untagged(v):
    if isinstance(v, dict):
        if set(v) == {"$float"}:
            return float(v["$float"])
        return {k: untagged(x) for k, x in v.items()}
    if isinstance(v, list):
        return [untagged(x) for x in v]
    return v


def load(texts):
    import yaml

    out = []
    for text in texts:
        try:
            out.append({"value": tagged(yaml.safe_load(io.StringIO(text)))})
        except Exception as e:  # noqa: BLE001 - every failure is an answer
            out.append({"error": f"{type(e).__name__}: {e}"})
    return out


_axolotl = None


def axolotl():
    """Imported on first use only: the YAML questions need PyYAML alone."""
    global _axolotl
    if _axolotl is None:
        os.environ.setdefault("AXOLOTL_DO_NOT_TRACK", "1")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        warnings.filterwarnings("ignore")
        from axolotl.utils.config import validate_config
        from axolotl.utils.dict import DictDefault

        logging.disable(logging.CRITICAL)
        _axolotl = (validate_config, DictDefault)
    return _axolotl


def error_locations(e):
    """The keys pydantic names, or [] for an error raised outside pydantic (a plain ValueError)."""
    errors = getattr(e, "errors", None)
    if not callable(errors):
        return []
    locs = []
    try:
        for err in errors():
            locs.append([str(p) for p in err.get("loc", ())])
    except Exception:  # noqa: BLE001
        return []
    return locs


def validate(items):
    import yaml

    validate_config, DictDefault = axolotl()
    out = []
    for item in items:
        try:
            cfg = yaml.safe_load(io.StringIO(item["text"])) if "text" in item else untagged(item["config"])
        except Exception as e:  # noqa: BLE001
            out.append({"valid": False, "type": type(e).__name__, "message": f"YAML: {e}"[:2000], "locs": []})
            continue
        try:
            # Silence prints and warnings from validators; only the verdict matters here.
            stdout, sys.stdout = sys.stdout, io.StringIO()
            try:
                validate_config(DictDefault(cfg))
            finally:
                sys.stdout = stdout
            out.append({"valid": True})
        except Exception as e:  # noqa: BLE001 - every failure is a verdict
            out.append({"valid": False, "type": type(e).__name__, "message": str(e)[:2000], "locs": error_locations(e)})
    return out


def schema():
    from importlib.metadata import version

    axolotl()
    from axolotl.utils.schemas.config import AxolotlInputConfig

    from pydantic.json_schema import GenerateJsonSchema

    class Generator(GenerateJsonSchema):
        """model_json_schema() fails on 0.18.0 (an Enum of torch.dtype values cannot be encoded; `axolotl
        config-schema` then falls back to a flat list without types): such values are written as their str()."""

        def encode_default(self, dft):
            try:
                return super().encode_default(dft)
            except Exception:  # noqa: BLE001
                return str(dft)

        def enum_schema(self, schema):
            try:
                return super().enum_schema(schema)
            except Exception:  # noqa: BLE001 - an Enum whose values are torch.dtype objects
                cls = schema["cls"]
                names = [m.name for m in schema["members"]]
                if cls.__name__ == "TorchAOQuantDType":
                    # Its fields take strings through quantization.py validate_ao_dtype: ask it which.
                    from axolotl.utils.schemas.quantization import validate_ao_dtype

                    def accepted(s):
                        try:
                            validate_ao_dtype(s)
                            return True
                        except ValueError:
                            return False

                    names = [s for s in names + ["fp8", "float8"] if accepted(s)]
                return {"title": cls.__name__, "enum": names, "x-python-enum": "member names a YAML config can use"}

    return {
        "axolotl": version("axolotl"),
        "pydantic": version("pydantic"),
        "schema": AxolotlInputConfig.model_json_schema(schema_generator=Generator),
        "plugins": plugin_schemas(Generator),
        "vocabulary": vocabulary(),
    }


def vocabulary():
    """Names Axolotl checks in code rather than in its pydantic types, read from the same installed package."""
    import pkgutil

    import axolotl.prompt_strategies as strategies
    from axolotl.utils.data.wrappers import DATASET_HANDLERS
    from axolotl.utils.schemas import enums
    from datasets.packaged_modules import _PACKAGED_DATASETS_MODULES

    def modules(pkg_path):
        return sorted(m.name for m in pkgutil.iter_modules(pkg_path) if not m.name.startswith("_"))

    rl = {}
    for sub in ("dpo", "kto", "orpo"):
        rl[sub] = modules([f"{strategies.__path__[0]}/{sub}"])
    from axolotl.utils.schemas.validation import SUPPORTED_METRICS

    return {
        "attn_implementations": sorted(enums.CANONICAL_ATTN_IMPLS),
        "attn_supporting_packing": sorted(enums.ATTN_IMPLS_SUPPORTING_PACKING),
        "eval_causal_lm_metrics": sorted(SUPPORTED_METRICS),
        "attn_legacy_flags": dict(sorted(enums.LEGACY_ATTN_FLAG_TO_IMPL.items())),
        "attn_short_forms": dict(sorted(enums.SHORT_FORM_ALIAS_TO_CANONICAL.items())),
        "dataset_handlers": sorted(DATASET_HANDLERS),
        "prompt_strategies": modules(strategies.__path__),
        "rl_prompt_strategies": rl,
        "ds_types": sorted(_PACKAGED_DATASETS_MODULES),
        # populate_by_name: the python field name of an aliased key (`model_config` <- overrides_of_model_config)
        # is accepted too, but the JSON schema lists only the alias.
        "field_names_of_aliases": field_names_of_aliases(),
    }


def field_names_of_aliases():
    from axolotl.utils.schemas.config import AxolotlInputConfig

    return {f.alias: name for name, f in sorted(AxolotlInputConfig.model_fields.items()) if f.alias and f.alias != name}


def plugin_schemas(generator):
    """The bundled plugins' own config models (merged into the schema only when `plugins` lists the plugin)."""
    import importlib
    import inspect
    import pkgutil

    import axolotl.integrations as integrations
    from axolotl.integrations.base import BasePlugin

    out = {}
    for mod in sorted(m.name for m in pkgutil.iter_modules(integrations.__path__) if m.ispkg):
        try:
            module = importlib.import_module(f"axolotl.integrations.{mod}")
        except Exception as e:  # noqa: BLE001 - a plugin whose optional extra is missing
            out[f"axolotl.integrations.{mod}"] = {"error": f"{type(e).__name__}: {e}"[:300]}
            continue
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if not issubclass(cls, BasePlugin) or cls is BasePlugin or cls.__module__.split(".")[2] != mod:
                continue
            path = f"axolotl.integrations.{mod}.{name}"
            try:
                args = cls().get_input_args()
                if not args:
                    continue
                args_mod, args_name = args.rsplit(".", 1)
                model = getattr(importlib.import_module(args_mod), args_name)
                out[path] = {"args": args, "schema": model.model_json_schema(schema_generator=generator)}
            except Exception as e:  # noqa: BLE001
                out[path] = {"error": f"{type(e).__name__}: {e}"[:300]}
    return out


def validators():
    """Which keys each validator reads, by walking the installed source's syntax tree (nothing is imported)."""
    import ast
    import importlib.util
    import pathlib

    schemas = pathlib.Path(importlib.util.find_spec("axolotl").origin).parent / "utils" / "schemas"
    out = {}
    for f in sorted(schemas.glob("*.py")):
        tree = ast.parse(f.read_text(encoding="utf-8"))
        for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
            for fn in (n for n in cls.body if isinstance(n, ast.FunctionDef)):
                if not any("validator" in ast.unparse(d) for d in fn.decorator_list):
                    continue
                keys = set()
                for node in ast.walk(fn):
                    if (
                        isinstance(node, ast.Call)
                        and isinstance(node.func, ast.Attribute)
                        and node.func.attr == "get"
                        and isinstance(node.func.value, ast.Name)
                        and node.func.value.id == "data"
                        and node.args
                        and isinstance(node.args[0], ast.Constant)
                        and isinstance(node.args[0].value, str)
                    ):
                        keys.add(node.args[0].value)
                    elif (
                        isinstance(node, ast.Subscript)
                        and isinstance(node.value, ast.Name)
                        and node.value.id == "data"
                        and isinstance(node.slice, ast.Constant)
                        and isinstance(node.slice.value, str)
                    ):
                        keys.add(node.slice.value)
                    elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
                        keys.add(node.attr)
                out[f"{f.name} {cls.name}.{fn.name}"] = sorted(keys)
    return out


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        try:
            op = req["op"]
            if op == "load":
                res = {"results": load(req["texts"])}
            elif op == "validate":
                res = {"results": validate(req["items"])}
            elif op == "schema":
                res = schema()
            elif op == "validators":
                res = {"validators": validators()}
            else:
                res = {"fatal": f"unknown op {op}"}
        except Exception as e:  # noqa: BLE001
            res = {"fatal": f"{type(e).__name__}: {e}"}
        sys.__stdout__.write(json.dumps(res, sort_keys=True) + "\n")
        sys.__stdout__.flush()


if __name__ == "__main__":
    main()
