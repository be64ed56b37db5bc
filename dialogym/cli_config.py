"""Command-line options and config-file keys generated from a command's config class.

A config class (a pydantic model: ``BenchConfig``, ``GRPOConfig``, ``LeagueConfig``, ...)
states each setting once: name, type, default, description, range, choices.
:func:`config_command` turns its fields into the options of a command (``max_new_tokens``
becomes ``--max-new-tokens``; a bool gets ``--x/--no-x``, or a pair the command spells, e.g.
``--guided/--free``; a ``Literal`` its choices, a list takes commas) and into the keys of the
command's ``--config`` YAML/JSON file, so a flag and the key of the same name always mean the
same thing. A flag given on the command line beats the file; a setting given nowhere is left
out, so the class's own default applies. Values are checked by the class alone, whichever way
they came in, and a bad one is one line that names the key and where it came from.

A field whose value is itself a config (``LeagueConfig.learner``: a ``GRPOConfig`` or a
``PPOConfig``) is *nested*: each of its settings is an option of its own name too
(``--beta``), and the config file gives it at the top (``beta: 0.1``) or in the field's
mapping (``learner: {beta: 0.1}``); :meth:`Settings.build` passes them to that field.

Options that are not settings of the class (the game, the model, ``--out``, ``--steps``,
...) are the command function's own parameters, declared with ``typer.Option`` as usual;
they may be keys of the config file too.
"""

from __future__ import annotations

import enum
import inspect
import json
import math
import stat
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, TypeVar, Union, get_args, get_origin

import annotated_types
import typer
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from dialogym.cli_output import finite_float, not_finite, too_many_episodes, user_errors

Config = TypeVar("Config", bound=BaseModel)

#: The parameter name of the config-file option every generated command gets.
CONFIG_FILE = "config_file"
_SET_SOURCES = ("COMMANDLINE", "ENVIRONMENT", "PROMPT")
#: The largest config file read: settings fit in a few kilobytes, and a device such as
#: /dev/zero or a huge file must not be read until memory runs out.
MAX_CONFIG_BYTES = 1024 * 1024
#: Settings that count a run's episodes, each alone or multiplied together (a training step
#: plays group_size x instances_per_step): each product is at most :data:`~dialogym.cli_output.MAX_EPISODES`.
EPISODE_COUNTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("episodes",), "episodes per run"),
    (("eval_episodes",), "evaluation episodes per opponent"),
    (("group_size", "instances_per_step"), "episodes per training step (group_size x instances_per_step)"),
)


def read_config_file(path: Path, noun: str) -> dict[str, Any]:
    """The mapping of settings in a YAML (``.yaml``/``.yml``, or any other name) or JSON
    (``.json``) file, with ``-`` in keys read as ``_``. Raises ``ValueError`` in one line."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISSOCK(mode):  # /dev/zero, a disk, a socket
            kind = "a socket" if stat.S_ISSOCK(mode) else "a device"
            raise ValueError(f"{path}: cannot read the {noun} config (it is {kind}, not a file); give a YAML or JSON file")
        with path.open("rb") as file:  # a pipe (`--config <(...)`) is read too, as far as the cap
            data = file.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            raise ValueError(
                f"{path}: cannot read the {noun} config (it is larger than {MAX_CONFIG_BYTES // 1024 // 1024} MB, "
                "the most a config may hold); give a YAML or JSON file of settings"
            )
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as err:  # a folder, a missing or binary file: say which
        reason = getattr(err, "strerror", None) or str(err)
        raise ValueError(f"{path}: cannot read the {noun} config ({reason}); give a YAML or JSON file") from None
    is_json = path.suffix.lower() == ".json"
    try:
        if is_json:
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as err:  # parser errors differ by format; all mean "not readable"
        kind = path.suffix.lstrip(".").lower() if path.suffix.lower() in (".json", ".yaml", ".yml") else "YAML"
        raise ValueError(f"{path}: not valid {kind}: {str(err).splitlines()[0]}") from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a {noun} config must be a mapping of settings, got {type(data).__name__}")
    return {str(key).replace("-", "_"): value for key, value in data.items()}


# --------------------------------------------------------------------------- settings
@dataclass
class Settings:
    """The settings one run of a command got, from its command line or its config file.

    ``values`` holds only the settings given somewhere (or a command's own default, see
    :func:`config_command`); :meth:`build` lets the config class fill in the rest.
    """

    noun: str
    values: dict[str, Any] = field(default_factory=dict)
    #: where each value came from: ``"command line"``, the config file's path, or ``"default"``
    where: dict[str, str] = field(default_factory=dict)
    #: for a command with several config classes: which of them (by label) have each setting
    owners: dict[str, list[str]] = field(default_factory=dict)
    #: the settings of nested configs: setting -> the field of the built class that holds it
    nested: dict[str, str] = field(default_factory=dict)

    def build(self, cls: type[Config], **fixed: Any) -> Config:
        """``cls`` from these values and ``fixed`` (what the command computed itself); the
        settings of a nested config go to its field as one mapping.

        Raises ``ValueError`` in one line naming the key and where its value came from.
        """
        values: dict[str, Any] = {}
        for key, value in self.values.items():
            if key in self.nested:
                values.setdefault(self.nested[key], {})[key] = value
            else:
                values[key] = value
        foreign = [key for key in values if key not in cls.model_fields]
        if foreign:
            key = foreign[0]
            owners = " and ".join(self.owners.get(key, [])) or "another command"
            raise ValueError(f"{self.where.get(key, 'command line')}: {key!r} is a setting of {owners} only, not of this run")
        for key, value in self.values.items():  # nan fails every range check, so say what it is
            info = _field_info(cls, key, self.nested.get(key))
            if info is not None and _unwrap(info.annotation)[0] is float and not_finite(value):
                raise ValueError(f"{self.where.get(key, 'command line')}: bad {self.noun} setting {key!r}: {not_finite(value)}")
        try:
            config = cls.model_validate({**values, **fixed})
        except ValidationError as err:
            first = err.errors()[0]
            loc = [str(part) for part in first["loc"]]
            name = ".".join(loc) or "config"
            message = str(first["msg"]).removeprefix("Value error, ")
            if first["type"] in ("bool_parsing", "bool_type"):
                message += "; write true or false"
            where = next((self.where[part] for part in reversed(loc) if part in self.where), "command line")
            if first["type"] == "extra_forbidden" and loc and loc[-1] in self.owners:  # a nested setting of another class
                raise ValueError(f"{where}: {loc[-1]!r} is a setting of {' and '.join(self.owners[loc[-1]])} only, "
                                 "not of this run") from None
            raise ValueError(f"{where}: bad {self.noun} setting {name!r}: {message}") from None
        for names, what in EPISODE_COUNTS:
            if all(name in cls.model_fields for name in names):
                reason = too_many_episodes(math.prod(getattr(config, name) for name in names), what)
                if reason:
                    given = [name for name in names if name in self.values] or list(names)
                    name = max(given, key=lambda n: getattr(config, n))
                    raise ValueError(f"{self.where.get(name, 'command line')}: bad {self.noun} setting {name!r}: {reason}")
        return config


# --------------------------------------------------------------------------- options
@dataclass
class _Option:
    """One generated option: a field of the config class(es) as typer will declare it."""

    name: str
    annotation: Any
    decls: tuple[str, ...]
    default: Any
    help: str
    listed: bool = False  # list[...] field: the flag takes commas and may be repeated
    optional: bool = False  # ``X | None`` field: an empty value means None
    owners: list[str] = field(default_factory=list)

    def parameter(self) -> inspect.Parameter:
        # float settings refuse nan and inf by name (a range check alone would misname them)
        number = {"parser": finite_float} if _unwrap(self.annotation)[0] is float else {}
        option = typer.Option(self.default, *self.decls, help=self.help, show_default=self.default is not None, **number)
        return inspect.Parameter(self.name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=self.annotation)

    def plain(self, value: Any) -> Any:
        """A value from the command line or a file, as the config class takes it."""
        if isinstance(value, enum.Enum):
            value = value.value
        if self.listed and isinstance(value, (str, list, tuple)):  # a repeated flag gives a list, each maybe with commas
            given = [value] if isinstance(value, str) else value
            value = [item.strip() for text in given for item in str(text).split(",") if item.strip()]
        if self.optional and value == "":
            value = None
        return value


def _field_info(cls: type[BaseModel], key: str, holder: str | None) -> FieldInfo | None:
    """The field ``key`` of ``cls``, or (``holder`` given) of a config class that the field
    ``holder`` of ``cls`` holds; None where there is none."""
    if holder is None:
        return cls.model_fields.get(key)
    inner = _unwrap(cls.model_fields[holder].annotation)[0]
    classes = [c for c in get_args(inner) or (inner,) if isinstance(c, type) and issubclass(c, BaseModel)]
    return next((c.model_fields[key] for c in classes if key in c.model_fields), None)


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(the type inside ``X | None``, whether None was allowed)."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _cli_type(name: str, annotation: Any) -> tuple[Any, bool, bool]:
    """(what typer declares the option as, listed, optional) for a field's annotation."""
    inner, optional = _unwrap(annotation)
    if get_origin(inner) is Literal:
        choices = [str(value) for value in get_args(inner)]
        return enum.Enum(f"{name}_choices", {value: value for value in choices}, type=str), False, optional
    if get_origin(inner) in (list, tuple, set, frozenset) or inner in (list, tuple):
        return list[str], True, optional
    if inner in (int, float, str, bool, Path):
        return inner, False, optional
    raise TypeError(f"config field {name!r}: no command-line option for type {annotation!r}")


def _range(info: FieldInfo) -> str:
    """The field's bounds written as click writes them: ``x>=1``, ``x>0``, ``0<=x<=1``."""
    low = high = None  # (bound, operator read left to right)
    for item in info.metadata:
        if isinstance(item, annotated_types.Ge):
            low = (item.ge, "<=")
        elif isinstance(item, annotated_types.Gt):
            low = (item.gt, "<")
        elif isinstance(item, annotated_types.Le):
            high = (item.le, "<=")
        elif isinstance(item, annotated_types.Lt):
            high = (item.lt, "<")
    if low and high:
        return f"{low[0]}{low[1]}x{high[1]}{high[0]}"
    if low:
        return f"x{low[1].replace('<', '>')}{low[0]}"
    return f"x{high[1]}{high[0]}" if high else ""


def _default(info: FieldInfo) -> Any:
    return None if info.is_required() else info.get_default(call_default_factory=True)


def _shown(value: Any) -> Any:
    """A default as the option shows and takes it (a list as its items, strings)."""
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return value


def generated_options(
    configs: Mapping[str, type[BaseModel]],
    *,
    exclude: Iterable[str] = (),
    include: Iterable[str] | None = None,
    defaults: Mapping[str, Any] | None = None,
    aliases: Mapping[str, str] | None = None,
    flags: Mapping[str, str] | None = None,
) -> list[_Option]:
    """The options of the fields of ``configs`` (label -> class; several when the command
    builds one of them, e.g. GRPO or PPO): one per field name, in field order.

    ``defaults`` replaces a class default for this command only; ``aliases`` gives a field
    a second flag and key (field name -> other name, e.g. an older flag's); ``flags`` spells a
    field's flag (field name -> declaration, e.g. ``"--guided/--free"``; the config-file key
    stays the field name). A field of ``flags`` that the classes lack is skipped, so one
    mapping serves every command.
    """
    defaults, aliases, exclude = dict(defaults or {}), dict(aliases or {}), set(exclude)
    flags = dict(flags or {})
    wanted = None if include is None else list(include)
    seen: dict[str, list[tuple[str, FieldInfo]]] = {}
    for label, cls in configs.items():
        for name, info in cls.model_fields.items():
            if name not in exclude and (wanted is None or name in wanted):
                seen.setdefault(name, []).append((label, info))
    order = wanted if wanted is not None else list(seen)
    options = []
    for name in order:
        if name not in seen:
            raise TypeError(f"no config field {name!r} in {', '.join(c.__name__ for c in configs.values())}")
        found = seen[name]
        info = found[0][1]
        if info.is_required() and name not in defaults:
            raise TypeError(f"config field {name!r} has no default: exclude it and pass it to build()")
        annotation, listed, optional = _cli_type(name, info.annotation)
        labels = [label for label, _ in found]
        if name in defaults:
            default = defaults[name]
            shown = ""
        else:
            values = {label: _default(i) for label, i in found}
            default = next(iter(values.values()))
            shown = ""
            if len({json.dumps(v, default=str) for v in values.values()}) > 1:
                default = None
                shown = "default: " + ", ".join(f"{label} {_shown(v)}" for label, v in values.items())
        bounds = _range(info)
        notes = [n for n in (bounds, shown, f"{' and '.join(labels)} only" if len(found) < len(configs) else "") if n]
        text = (info.description or "") + (f" ({'; '.join(notes)})" if notes else "")
        flag = name.replace("_", "-")
        other = aliases.get(name, "").replace("_", "-")
        spelled = "--{0}/--no-{0}" if annotation is bool else "--{0}"
        decls = (flags.get(name) or spelled.format(flag),) + ((spelled.format(other),) if other else ())
        if optional or default is None:
            annotation = Optional[annotation]  # noqa: UP007 (typer before 0.15 reads no X | None here)
        options.append(_Option(name, annotation, decls, _shown(default), text.strip(), listed, optional, labels))
    return options


def _command_options(
    classes: Mapping[str, type[BaseModel]],
    nested: Mapping[str, Mapping[str, type[BaseModel]]],
    *,
    exclude: Iterable[str] = (),
    include: Iterable[str] | None = None,
    **spelling: Any,
) -> tuple[list[_Option], dict[str, list[str]], dict[str, str]]:
    """The options of ``classes`` and of the classes of each ``nested`` field (``include``
    applies to ``classes`` alone; ``spelling``: ``defaults``, ``aliases``, ``flags`` of
    :func:`generated_options`, to all); for each setting that not every class of its group
    has, the labels of those that do; and the field that holds each nested setting."""
    options, owners, holder = [], {}, {}
    groups = [(None, classes, include), *((name, group, None) for name, group in nested.items())]
    for name, group, wanted in groups:
        made = generated_options(group, exclude={*exclude, *nested}, include=wanted, **spelling)
        owners.update({o.name: o.owners for o in made if len(o.owners) < len(group)})
        holder.update({o.name: name for o in made if name is not None})
        options += made
    twice = sorted({o.name for o in options if sum(other.name == o.name for other in options) > 1})
    if twice:
        raise TypeError(f"settings {twice} would be options twice: of the command's config and of a nested one")
    return options, owners, holder


def _flattened(given: dict[str, Any], holder: Mapping[str, str], path: Path) -> dict[str, Any]:
    """A config file's settings with each nested field's mapping (``learner: {beta: 0.1}``)
    read as keys of their own (``beta``), as the flags are; a key there that is no setting
    of the field stays dotted (``learner.x``, unknown), and a key given both ways is refused."""
    fields = set(holder.values())
    flat = {key: value for key, value in given.items() if key not in fields}
    for name in sorted(fields & set(given)):
        if not isinstance(given[name], dict):
            raise ValueError(f"{path}: {name} is a mapping of settings (e.g. {name}: {{lr: 0.001}}), "
                             f"got {type(given[name]).__name__}")
        for key, value in given[name].items():
            key = str(key).replace("-", "_")
            if holder.get(key) != name:
                key = f"{name}.{key}"
            elif key in flat:
                raise ValueError(f"{path}: {key!r} is given twice, at the top and under {name}:; keep one")
            flat[key] = value
    return flat


def config_command(
    func: Callable[..., Any],
    configs: type[BaseModel] | Mapping[str, type[BaseModel]],
    *,
    noun: str,
    exclude: Iterable[str] = (),
    include: Iterable[str] | None = None,
    defaults: Mapping[str, Any] | None = None,
    aliases: Mapping[str, str] | None = None,
    flags: Mapping[str, str] | None = None,
    nested: Mapping[str, Mapping[str, type[BaseModel]]] | None = None,
) -> Callable[..., Any]:
    """A typer command: ``func``'s own parameters, an option per setting of ``configs``, and
    ``--config``/``--config-file`` FILE. ``func`` takes ``settings: Settings`` (the settings
    given, for :meth:`Settings.build`) and its own parameters, with a file's values where the
    command line gave none. ``noun`` names the settings in error lines ("bench", "training").
    ``nested``: the fields whose value is a config, each's classes by label (``{"learner":
    {"grpo": GRPOConfig, "ppo": PPOConfig}}``). See :func:`generated_options` for the rest."""
    classes = {configs.__name__: configs} if isinstance(configs, type) else dict(configs)
    options, owners, holder = _command_options(classes, dict(nested or {}), exclude=exclude, include=include,
                                               defaults=defaults, aliases=aliases, flags=flags)
    by_name = {option.name: option for option in options}
    key_of = {aliases[name]: name for name in (aliases or {}) if name in by_name}
    own = [p for p in inspect.signature(func, eval_str=True).parameters.values() if p.name != "settings"]
    clash = {p.name for p in own} & (set(by_name) | {CONFIG_FILE, "ctx"})
    if clash:
        raise TypeError(f"{func.__name__}: parameters {sorted(clash)} clash with generated options")
    config_option = typer.Option(
        None, "--config", "--config-file", help=f"YAML or JSON file of any of these options ({noun} settings); flags override it"
    )
    parameters = [
        inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context),
        *(p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own),
        *(option.parameter() for option in options),
        inspect.Parameter(CONFIG_FILE, inspect.Parameter.KEYWORD_ONLY, default=config_option, annotation=Optional[Path]),
    ]

    def command(ctx: typer.Context, **kwargs: Any) -> Any:
        path = kwargs.pop(CONFIG_FILE)
        params = {p.name: p for p in ctx.command.params}
        options_of_func = {p.name for p in own if getattr(params.get(p.name), "param_type_name", "") == "option"}
        file_keys = options_of_func | set(by_name) | set(key_of)
        given = _flattened(read_config_file(path, noun), holder, path) if path is not None else {}
        unknown = sorted(set(given) - file_keys)
        if unknown:
            raise ValueError(f"{path}: unknown {noun} option(s) {unknown}; known: {sorted(file_keys | set(holder.values()))}")
        from_file = {key_of.get(key, key): value for key, value in given.items()}

        def on_command_line(name: str) -> bool:
            # compared by name: typer may carry its own copy of click's ParameterSource enum
            return getattr(ctx.get_parameter_source(name), "name", "") in _SET_SOURCES

        settings = Settings(noun, owners=owners, nested=holder)
        for option in options:
            if on_command_line(option.name):
                settings.values[option.name] = option.plain(kwargs[option.name])
                settings.where[option.name] = "command line"
            elif option.name in from_file:
                settings.values[option.name] = option.plain(from_file[option.name])
                settings.where[option.name] = str(path)
            elif defaults and option.name in defaults:
                settings.values[option.name] = defaults[option.name]
                settings.where[option.name] = "default"
        values = {p.name: kwargs[p.name] for p in own}
        for p in own:
            if p.name in from_file and not on_command_line(p.name):
                try:
                    value = params[p.name].process_value(ctx, from_file[p.name])
                except Exception as err:  # click's BadParameter and friends: one line, naming the key
                    raise ValueError(f"{path}: {p.name}: {str(err).removeprefix('Value error, ')}") from None
                if isinstance(p.annotation, type) and issubclass(p.annotation, Path) and value is not None:
                    value = Path(value)
                values[p.name] = value
        return func(settings=settings, **values)

    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    for attribute in ("__name__", "__qualname__", "__doc__", "__module__"):
        setattr(command, attribute, getattr(func, attribute))
    return user_errors(command)
