"""Weights out of a pickled PyTorch file without running any code the file names.

`torch.load` reads the container (zip or legacy format) and the tensor storages; unpickling
goes through `SafeUnpickler`, whose `find_class` resolves only an allow-list (OrderedDict,
torch's tensor, parameter and storage rebuilders, a few builtin containers). Every other class
or function becomes an inert `Placeholder`: calling it, instantiating it or restoring its state
only records the arguments. No module named by the file is ever imported. A pickled
`nn.Module` therefore comes back as a tree of placeholders whose recorded `__dict__`
(`_parameters`, `_buffers`, `_modules`) yields the state dict, in PyTorch's order.
"""

from __future__ import annotations

import _compat_pickle
import collections
import pickle
import sys
import types
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

# (module, name) → object: the only globals a file may resolve to real objects.
_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): torch._utils._rebuild_parameter_with_state,
    ("torch", "Size"): torch.Size,
    ("torch", "device"): torch.device,
    ("torch.nn.parameter", "Parameter"): torch.nn.Parameter,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "tuple"): tuple,
    ("builtins", "list"): list,
    ("builtins", "dict"): dict,
    ("builtins", "slice"): slice,
}
# dtypes appear as globals in some files' tensor metadata.
_DTYPE_NAMES = ("float32", "float", "float64", "double", "float16", "half", "bfloat16", "uint8")
_DTYPE_NAMES += ("int8", "int16", "short", "int32", "int", "int64", "long", "bool")
_DTYPES = {name: getattr(torch, name) for name in _DTYPE_NAMES}


class Placeholder:
    """An object of a class the file named but we refused to load; holds what pickle gave it."""

    qualname = "?"
    # Class-level defaults: pickle's NEWOBJ makes instances without calling __init__.
    args: tuple = ()
    kwargs: dict = {}  # noqa: RUF012 - never mutated
    state: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs, self.state = args, kwargs, None
        # Pickled modules are rebuilt without __init__ (NEWOBJ); a call means the file asked
        # for a function or constructor to run, which is what a trap does.
        for sink in _CALL_SINKS:
            sink.append(self.qualname)

    def __setstate__(self, state: Any) -> None:
        self.state = state

    # pickle appends/sets items on objects that are lists or dicts subclasses.
    def append(self, item: Any) -> None:
        self.__dict__.setdefault("items", []).append(item)

    def extend(self, items: Any) -> None:
        self.__dict__.setdefault("items", []).extend(items)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.__dict__.setdefault("mapping", {})[key] = value

    def __repr__(self) -> str:
        return f"<placeholder {self.qualname}>"


def _placeholder(module: str, name: str) -> type[Placeholder]:
    """A fresh Placeholder subclass standing for module.name."""
    qualname = f"{module}.{name}"
    return types.new_class(name, (Placeholder,), {}, lambda ns: ns.update(qualname=qualname))


def _py3_name(module: str, name: str) -> tuple[str, str]:
    """Python 2 names (protocol 2 writes `__builtin__.set`) as Python 3 names, as pickle does."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


class SafeUnpickler(pickle.Unpickler):
    """Resolves only allow-listed globals; everything else becomes a Placeholder class."""

    refused: list[str]

    def find_class(self, module: str, name: str) -> Any:
        module, name = _py3_name(module, name)
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name in _DTYPES:
            return _DTYPES[name]
        if module == "torch" and name.endswith("Storage"):
            # torch's own wrapper already maps storage classes; this covers files it does not.
            return getattr(torch, name) if hasattr(torch, name) else _placeholder(module, name)
        self.__dict__.setdefault("refused", []).append(f"{module}.{name}")
        return _placeholder(module, name)


def _pickle_module(name: str, unpickler: type[pickle.Unpickler]) -> types.ModuleType:
    """What `torch.load(pickle_module=...)` expects: Unpickler, load and the exceptions."""
    module = types.ModuleType(name)
    module.Unpickler = unpickler
    module.UnpicklingError = pickle.UnpicklingError
    module.load = lambda file, **kwargs: unpickler(file, **kwargs).load()
    return module


SAFE_PICKLE = _pickle_module("reelface_safe_pickle", SafeUnpickler)
# Lists collecting the qualnames of placeholders called during a `load_safe` in progress.
_CALL_SINKS: list[list[str]] = []


def is_torchscript(path: Path) -> bool:
    """Whether `path` is a TorchScript zip (torch.jit.save), told by the entries it holds."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any(n.split("/", 1)[-1].startswith(("code/", "constants.pkl")) for n in names)


def load_safe(path: Path, warn: bool = True) -> Any:
    """Unpickle a torch file with the allow-list; foreign objects come back as placeholders.

    With `warn`, one stderr line names every refused global the file called (not run).
    """
    if is_torchscript(path):
        # torch.load hands such an archive to torch.jit.load, which runs the code stored in it
        # (a scripted module's __setstate__ included) before any allow-list could look.
        raise pickle.UnpicklingError(
            f"{path} is a TorchScript archive, and loading one runs code stored in it; re-save "
            "the network as a state dict, or pass --trust-pickle if you trust the file"
        )
    called: list[str] = []
    _CALL_SINKS.append(called)
    # weights_only=False only because torch would otherwise use its own unpickler, which
    # refuses the file outright; ours is at least as strict about what it executes.
    try:
        with warnings.catch_warnings():
            # Legacy-format files make torch compare each module class's source with the
            # saved one; for placeholders that only produces noise.
            warnings.simplefilter("ignore", UserWarning)
            obj = torch.load(
                path, map_location="cpu", pickle_module=SAFE_PICKLE, weights_only=False
            )
    finally:
        _CALL_SINKS.remove(called)
    if warn and called:
        names = ", ".join(dict.fromkeys(called))
        print(
            f"warning: {path}: refused {len(called)} call(s) the file asks for, not run: "
            f"{names}; only its weights are used (re-save it as a state dict)",
            file=sys.stderr,
        )
    return obj


def load_trusted(path: Path) -> Any:
    """A full unpickle (runs the file's code); classes that cannot be imported stay placeholders."""
    return torch.load(path, map_location="cpu", pickle_module=_TRUSTED_PICKLE, weights_only=False)


class _TrustingUnpickler(pickle.Unpickler):
    """The standard unpickler, except that a missing module or class becomes a placeholder."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError):
            return _placeholder(module, name)


_TRUSTED_PICKLE = _pickle_module("reelface_trusting_pickle", _TrustingUnpickler)


def state_dict_of(obj: Any) -> OrderedDict[str, torch.Tensor] | None:
    """The weights inside whatever a file held, or None when it holds no network.

    Understands a plain state dict, a module (real, placeholder, or a mix of both after a
    trusted load of classes that no longer exist) and a training dict with a 'model' or
    'state_dict' entry; a DataParallel "module." prefix is left for the caller.
    """
    if isinstance(obj, torch.nn.Module | Placeholder):
        state = _module_state(obj)
        return state if state else None
    if isinstance(obj, dict):
        if obj and all(isinstance(k, str) and torch.is_tensor(v) for k, v in obj.items()):
            return OrderedDict(obj)
        for key in ("model", "state_dict", "net", "arcface"):
            if key in obj:
                found = state_dict_of(obj[key])
                if found:
                    return found
    return None


def _module_state(node: Any, prefix: str = "") -> OrderedDict[str, torch.Tensor]:
    """A module's state dict from its attributes (`_parameters`, `_buffers`, `_modules`).

    Read from the attributes rather than through nn.Module.state_dict so that placeholders
    (whose recorded __dict__ is `state`) and real modules mix freely, in PyTorch's order.
    """
    attrs = node.state if isinstance(node, Placeholder) else vars(node)
    attrs = attrs if isinstance(attrs, dict) else {}
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    skip = attrs.get("_non_persistent_buffers_set") or set()
    for group in ("_parameters", "_buffers"):
        for name, tensor in (attrs.get(group) or {}).items():
            if torch.is_tensor(tensor) and name not in skip:
                out[prefix + name] = tensor.detach()
    for name, child in (attrs.get("_modules") or {}).items():
        if isinstance(child, torch.nn.Module | Placeholder):
            out.update(_module_state(child, f"{prefix}{name}."))
    return out
