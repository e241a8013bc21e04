"""Finding, checking and building a user's strategy.

A strategy is named `module:Class` (an installed package, or a module in the
working folder) or `path/to/file.py:Class`. Its constructor's parameters come
as text (`--param lookback_bars=24`) and are converted to the constructor's
annotated types. Every mistake a first strategy tends to have (a file that is
not on the import path, a wrong `on_candle` signature, an unknown parameter or
a value of the wrong type) is one `StrategyLoadError` sentence that names it.

A `StrategyChoice` is what a run stores: the canonical name (files resolved to
absolute paths, so a resumed run finds them from any folder), the parameters
given and the parameters in force (defaults included).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import json
import math
import re
import sys
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any, Final

from pydantic import TypeAdapter, ValidationError

from engine.errors import StrategyError, StrategyLoadError
from engine.plain import plain
from engine.signal.base import Strategy

DEFAULT_STRATEGY = "engine.signal.momentum:MomentumStrategy"
_WHOLE = re.compile(r"[+-]?[0-9]+", re.ASCII)
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)
CALLBACKS = ("on_candle", "on_trade")
_EXPECTED = {
    "on_candle": "def on_candle(self, candle, context)",
    "on_trade": "def on_trade(self, trade, context)",
}


@dataclass(frozen=True)
class StrategyChoice:
    """A strategy by name, with the folder it was found in and its parameters."""

    spec: str = DEFAULT_STRATEGY
    params: Mapping[str, Any] = field(default_factory=dict)
    folder: str | None = None  # the working folder a module was imported from

    @classmethod
    def resolve(
        cls, spec: str, params: Mapping[str, Any] | None = None, cwd: Path | None = None
    ) -> StrategyChoice:
        """The canonical choice for `spec` as the user typed it, checked by building it once."""
        spec = spec.strip()
        module_part, _, class_name = spec.rpartition(":")
        if not module_part or not class_name:
            raise StrategyLoadError(
                f"strategy {spec!r} is not like package.module:ClassName or "
                "path/to/file.py:ClassName"
            )
        folder = None
        if _is_file(module_part):
            path = Path(module_part).expanduser()
            path = (cwd or Path.cwd()) / path if not path.is_absolute() else path
            spec = f"{path.resolve()}:{class_name}"
        else:
            here = (cwd or Path.cwd()).resolve()
            top = module_part.split(".")[0]
            found = _importable(module_part)
            origin = Path(found.origin).resolve() if found and found.origin else None
            local = here / f"{top}.py"
            if "." not in module_part and local.is_file() and origin in (None, local):
                spec = f"{local}:{class_name}"  # a file in the working folder: keep its path
            elif found is None and (here / top / "__init__.py").is_file():
                folder = str(here)
        choice = cls(spec, dict(params or {}), folder)
        built = choice.build()  # fail now, before a run is created
        _check_fresh_state(built)
        return choice

    @classmethod
    def from_config(cls, config: Mapping[str, Any], fallback: str) -> StrategyChoice:
        """The choice a run stored, or `fallback` (its settings' STRATEGY) for older runs."""
        stored = config.get("strategy")
        if not isinstance(stored, Mapping):
            return cls(fallback)
        return cls(str(stored["spec"]), dict(stored.get("given") or {}), stored.get("folder"))

    @property
    def class_name(self) -> str:
        return self.spec.rpartition(":")[2]

    def strategy_class(self) -> type[Strategy]:
        """The class, loaded once per choice (a file strategy's module runs once)."""
        cached = self.__dict__.get("_class")
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        found = self._find_class()
        object.__setattr__(self, "_class", found)
        return found

    def _find_class(self) -> type[Strategy]:
        module_part, _, class_name = self.spec.rpartition(":")
        module = _load_module(module_part, self.folder)
        found = getattr(module, class_name, None)
        if found is None:
            hint = ""
            top = module_part.split(".")[0]
            local = Path.cwd() / f"{top}.py"
            if not _is_file(module_part) and local.is_file():
                hint = (
                    f" (an installed module is also called {top!r}; pass ./{local.name}:"
                    f"{class_name} to use your file)"
                )
            raise StrategyLoadError(
                f"strategy {self.spec!r}: {module_part} has no class {class_name}{hint}"
            )
        if not isinstance(found, type) or not issubclass(found, Strategy):
            raise StrategyLoadError(
                f"strategy {self.spec!r} is not a Strategy subclass; subclass "
                "engine.signal.base.Strategy"
            )
        check_callbacks(found)
        return found

    def parameters(self) -> dict[str, Any]:
        """Every constructor parameter in force: the defaults, overridden by those given."""
        cls = self.strategy_class()
        return effective_params(cls, convert_params(cls, self.params))

    def build(self) -> Strategy:
        cls = self.strategy_class()
        values = convert_params(cls, self.params)
        try:
            return cls(**values)
        except Exception as exc:  # the user's constructor: any refusal is a load error
            raise StrategyLoadError(
                f"strategy {cls.__name__} cannot be built with {_shown(values)}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    def as_config(self) -> dict[str, Any]:
        """The choice as stored with a run; parameters as pairs, so they keep their order."""
        return {
            "spec": self.spec,
            "folder": self.folder,
            "given": json_values(dict(self.params)),
            "params": [[k, v] for k, v in json_values(self.parameters()).items()],
        }


def _shown(values: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in values.items()) or "no parameters"


def json_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters as JSON values: numbers and text as they are, anything else as text."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        value = plain(value)
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            value = str(value)
        out[name] = value
    return out


def _is_file(module_part: str) -> bool:
    return module_part.endswith(".py") or "/" in module_part or "\\" in module_part


def _importable(module_name: str) -> Any:
    try:
        return importlib.util.find_spec(module_name)
    except Exception:  # a parent package that fails to import: not importable as named
        return None


def _load_module(module_part: str, folder: str | None) -> ModuleType:
    if _is_file(module_part):
        return _load_file(Path(module_part))
    added = folder is not None and folder not in sys.path
    if added:
        sys.path.insert(0, str(folder))
    try:
        return importlib.import_module(module_part)
    except ModuleNotFoundError as exc:
        missing = exc.name or module_part
        if module_part == missing or module_part.startswith(missing + "."):
            raise StrategyLoadError(
                f"strategy module {module_part!r} cannot be imported: there is no "
                f"{module_part.split('.')[0]}.py in the working folder and no installed package "
                f"of that name; pass a file path like ./my_strategy.py:MyStrategy"
            ) from None
        raise StrategyLoadError(
            f"strategy module {module_part!r} cannot be imported: it needs {missing!r}, which "
            "is not installed; pip install it"
        ) from None
    except StrategyLoadError:
        raise
    except Exception as exc:  # the user's module ran and failed: name where
        raise StrategyLoadError(f"strategy module {module_part!r} {_failed(exc)}") from exc
    finally:
        if added:
            sys.path.remove(str(folder))


def _load_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise StrategyLoadError(f"strategy file {path} does not exist; check the path")
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:8]
    name = f"claire_strategy_{''.join(c if c.isalnum() else '_' for c in path.stem)}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise StrategyLoadError(f"strategy file {path} cannot be read as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look their module up here
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's file ran and failed: name where
        sys.modules.pop(name, None)
        raise StrategyLoadError(f"strategy file {path} {_failed(exc)}") from exc
    return module


def _failed(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return f"has a syntax error at line {exc.lineno}: {exc.msg}"
    frame = _user_frame(exc)
    where = f" at {frame[0]}:{frame[1]}" if frame else ""
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        return (
            f"cannot be imported{where}: it needs {exc.name!r}, which is not installed; "
            "pip install it"
        )
    return f"failed while loading{where}: {type(exc).__name__}: {exc}"


def _user_frame(exc: BaseException) -> tuple[str, int] | None:
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    return (frames[-1].filename, frames[-1].lineno or 0) if frames else None


def check_callbacks(cls: type[Strategy]) -> None:
    """`on_candle` and `on_trade`, where overridden, must take (candle or trade, context)."""
    for name in CALLBACKS:
        method = getattr(cls, name)
        if method is getattr(Strategy, name):
            continue
        if inspect.iscoroutinefunction(method) or inspect.isasyncgenfunction(method):
            raise StrategyLoadError(
                f"{cls.__name__}.{name} is async; write it as {_EXPECTED[name]}: a plain "
                "function returning a list of Intent"
            )
        try:
            signature = inspect.signature(method)
            signature.bind(object(), object(), object())
        except (TypeError, ValueError):
            raise StrategyLoadError(
                f"{cls.__name__}.{name}{_signature(method)} has the wrong signature; expected "
                f"{_EXPECTED[name]} returning a list of Intent"
            ) from None


def _signature(method: Any) -> str:
    try:
        return str(inspect.signature(method))
    except (TypeError, ValueError):
        return "(...)"


# --- parameters --------------------------------------------------------------------


def _constructor(cls: type[Strategy]) -> inspect.Signature:
    try:
        return inspect.signature(cls)
    except (TypeError, ValueError):
        return inspect.Signature()


def _hints(cls: type[Strategy]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls.__init__)
    except Exception:  # unresolvable annotations: fall back to the defaults' types
        return {}


def _target_type(parameter: inspect.Parameter, hints: Mapping[str, Any]) -> Any:
    hint = hints.get(parameter.name)
    if hint is not None:
        return hint
    default = parameter.default
    if default is not inspect.Parameter.empty and isinstance(
        default, bool | int | float | Decimal | str
    ):
        return type(default)
    return Any


def _type_name(target: Any) -> str:
    return getattr(target, "__name__", None) or str(target).replace("typing.", "")


def convert_params(cls: type[Strategy], given: Mapping[str, Any]) -> dict[str, Any]:
    """The given parameters converted to the constructor's types; refused with the name."""
    signature = _constructor(cls)
    accepted = {
        name: p
        for name, p in signature.parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    hints = _hints(cls)
    values: dict[str, Any] = {}
    for name, raw in given.items():
        parameter = accepted.get(name)
        if parameter is None:
            if takes_any:
                values[name] = raw
                continue
            takes = ", ".join(accepted) or "no parameters"
            raise StrategyLoadError(
                f"--param {name}: {cls.__name__} has no parameter {name!r}; it takes {takes}"
            )
        target = _target_type(parameter, hints)
        values[name] = _convert(cls, name, raw, target)
    missing = [name for name, p in accepted.items() if p.default is p.empty and name not in values]
    if missing:
        raise StrategyLoadError(
            f"{cls.__name__} needs "
            + " ".join(f"--param {name}=VALUE" for name in missing)
            + " (its constructor has no default for it)"
        )
    return values


def _convert(cls: type[Strategy], name: str, raw: Any, target: Any) -> Any:
    if target is Any:
        return raw
    if target in (int, float, Decimal) and isinstance(raw, str) and not _plain_text(raw):
        pattern = _WHOLE if target is int else _NUMBER
        if not pattern.fullmatch(raw.strip()):
            example = "24" if target is int else "0.006"
            raise StrategyLoadError(
                f"--param {name}={raw} is not a plain {_type_name(target)} for {cls.__name__}: "
                f"write a finite number with the digits 0-9, like {name}={example}"
            )
    adapter: TypeAdapter[Any] = TypeAdapter(target)
    try:
        value = adapter.validate_python(raw)
    except ValidationError as first:
        if isinstance(raw, str) and raw.strip()[:1] in "[{":
            try:
                return adapter.validate_json(raw)
            except ValidationError:
                pass
        reason = first.errors()[0].get("msg", "invalid value")
        raise StrategyLoadError(
            f"--param {name}={raw} is not a valid {_type_name(target)} for {cls.__name__}: {reason}"
        ) from None
    if isinstance(value, float | Decimal) and not math.isfinite(value):
        raise StrategyLoadError(
            f"--param {name}={raw} is not a finite number for {cls.__name__}; give a number "
            "like 0.006"
        )
    return value


def _plain_text(raw: str) -> bool:
    return raw.isascii() and "_" not in raw


def effective_params(cls: type[Strategy], values: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, p in _constructor(cls).parameters.items():
        if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            continue
        if name in values:
            out[name] = values[name]
        elif p.default is not p.empty:
            out[name] = p.default
    out.update({k: v for k, v in values.items() if k not in out})
    return out


def parse_param(text: str) -> tuple[str, str]:
    """`name=value` from the command line."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier():
        raise StrategyLoadError(
            f"--param {text!r} is not like name=value, e.g. --param lookback_bars=24"
        )
    return name, value.strip()


def _check_fresh_state(strategy: Strategy) -> None:
    """`strategy_state` of a strategy built a moment ago, before any data."""
    try:
        strategy.export_state()
    except Exception:  # its state may need data first: checkpoints judge it then
        return
    strategy_state(strategy)


def strategy_state(strategy: Strategy) -> dict[str, Any]:
    """The strategy's `export_state()`, refused in one sentence when JSON cannot hold it."""
    state = strategy.export_state()
    name = type(strategy).__name__
    if not isinstance(state, dict):
        raise StrategyError(
            f"strategy {name}: export_state() returned a {type(state).__name__}; return a dict "
            "of JSON values (numbers, text, lists, dicts)"
        )
    problem = None if _is_json(state) else _not_json(state, "")
    if problem is not None:
        where, value = problem
        raise StrategyError(
            f"strategy {name}: export_state() field {where} is a {type(value).__name__}, which "
            "JSON cannot hold; store it as numbers, text, lists or dicts (a Decimal as str, a "
            "time as its isoformat) and convert it back in import_state()"
        )
    return state


_KEYS: Final = (str, int, float, bool)


def _is_json(value: Any) -> bool:
    """`_not_json(value) is None`, told without naming places: a state is checked at
    every checkpoint, and nearly always holds only plain JSON values. Anything but the
    plain types (a subclass among them) is left to `_not_json`."""
    kind = type(value)
    if kind is float:
        return math.isfinite(value)
    if kind is str or kind is int or kind is bool or value is None:
        return True
    if kind is list or kind is tuple:
        for item in value:
            kind = type(item)
            if kind is float:
                if not math.isfinite(item):
                    return False
            elif not (kind is str or kind is int) and not _is_json(item):
                return False
        return True
    if kind is dict:
        for key, item in value.items():
            if type(key) not in _KEYS and (key is None or not isinstance(key, _KEYS)):
                return False
            if not _is_json(item):
                return False
        return True
    return _not_json(value, "") is None


def _not_json(value: Any, where: str) -> tuple[str, Any] | None:
    """The first place in `value` that JSON cannot hold (strict: no NaN), with its value."""
    if value is None or isinstance(value, bool | int | str):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else (where or "the state", value)
    if isinstance(value, dict):
        for key, item in value.items():
            inner = f"{where}.{key}" if where else str(key)
            if not isinstance(key, str | int | float | bool) or key is None:
                return inner, key
            found = _not_json(item, inner)
            if found is not None:
                return found
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _not_json(item, f"{where}[{index}]")
            if found is not None:
                return found
        return None
    return where or "the state", value


def describe(spec: str, params: Mapping[str, Any]) -> str:
    """`Class (spec) name=value ...` for summaries and reports."""
    shown = " ".join(f"{k}={v}" for k, v in params.items())
    return f"{spec.rpartition(':')[2]} ({spec})" + (f" {shown}" if shown else "")


def load_strategy(path: str, **params: Any) -> Strategy:
    """Build a strategy from `package.module:Class` or `path/to/file.py:Class`.

    Parameters are converted to the constructor's annotated types; see
    `StrategyChoice` for the rules and the errors.
    """
    return StrategyChoice.resolve(path, params).build()


__all__ = [
    "DEFAULT_STRATEGY",
    "StrategyChoice",
    "check_callbacks",
    "convert_params",
    "describe",
    "effective_params",
    "load_strategy",
    "parse_param",
    "strategy_state",
]
