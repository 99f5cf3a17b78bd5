"""The states file of ``gluon_opt.Trainer``: a format that cannot run code, checked on loading.

``gluon.Trainer.save_states`` pickles the optimizer and its states, and ``load_states``
unpickles whatever the file holds: a states file can run any code (``__reduce__``), a states
file of another optimizer silently replaces the trainer's, and a corrupt or mismatched one
fails late, in a kernel, or not at all. ``gluon_opt.Trainer`` writes and reads this instead.

The file
--------
One uncompressed ``.npz`` (a zip archive; ``numpy.load(path, allow_pickle=False)`` reads it):

* ``a0``, ``a1``, ...: every array (state tensors, float16 master weights, L-BFGS history, ...)
  as plain ``.npy`` members (no object arrays);
* ``__states__``: the UTF-8 JSON document below, as a ``uint8`` array;
* ``__sha256__``: the hex SHA-256 of the JSON bytes followed by, per array in name order, its
  name, dtype, shape and bytes (zip's CRC-32 catches most flipped bytes; the digest catches the
  rest and any edit of the JSON).

The JSON document::

    {"format": "gluon_opt.trainer_states", "version": 1,
     "optimizer": "gluon_opt.adam",                    # registry name, for messages
     "hyperparameters": {"learning_rate": 0.01, ...},  # for people; the check uses the tree
     "params": [{"index": 0, "name": "dense0_weight", "shape": [16, 20], "dtype": "float32"}, ...],
     "trainer": {"update_on_kvstore": false, "contexts": 1, "num_steps": 10, ...},
     "optimizer_state": <tree>,                        # the optimizer object
     "states": [[0, <tree>], [1, <tree>], ...],        # per-parameter states (first context)
     "state_storage": {"state_dtype": "int8", "state_block_size": 256, "state_min_size": 4096}}

A ``<tree>`` is JSON for a Python value: null, booleans, integers, strings and finite floats as
themselves; ``{"float": "nan"}`` for non-finite floats; ``{"scalar": "float32", "value": x}``
for NumPy scalars; ``{"tuple": [...]}``, ``{"list": [...]}``, ``{"dict": [[key, value], ...]}``
(keys keep their types); ``{"array": "a3", "dtype": ..., "shape": ...}`` for an NDArray
(``"numpy": true`` for a NumPy array); ``{"object": "module.Class", "attrs": {...}}`` for an
object (an optimizer, a nested optimizer, a learning-rate scheduler); ``{"callable":
"module.name"}`` for a function (Muon's ``adamw_params`` selector). A list, dict, array or object
met twice is written once with an ``"id"`` and then referred to as ``{"ref": id}``: MXNet's
``_index_update_count`` is one of the dicts of ``_all_index_update_counts``, and must stay so.

Loading never creates an object the file names: it fills the trainer's own objects. The
optimizer must be of the same class; its hyperparameters (the arguments of its ``__init__``:
learning rate, weight decay, betas, ...; nested optimizers and schedulers are recursed into)
must be equal, unless ``check_hyperparameters=False`` (the file's values then replace the
trainer's, as ``gluon.Trainer`` does); everything else in the optimizer (update counts,
``num_update``, L-BFGS's history, a scheduler's progress, ...) is restored. Each parameter's
state is created by the trainer's optimizer for the trainer's weight (so it has the right
structure, dtype and context) and the file's arrays are copied into it, after a check of their
shapes and dtypes. Every failure to load is a :class:`StatesFileError`, one line naming the
file and the first mismatch; nothing is changed then.

``state_storage`` records how the states are stored (``state_dtype``, see
``gluon_opt.optimizers.lowprec``; absent: float32). A file whose storage differs from the
trainer's optimizer's is converted: its states are read in the file's storage and stored in the
trainer's (int8 or bfloat16 into float32 exactly, the other ways rounded as a step stores
them). ``state_rounding`` and ``state_seed`` are the trainer's own too.
"""
import hashlib
import inspect
import io
import json
import math
import os
import types

import numpy as np
import mxnet as mx
from mxnet import nd

from .optimizers.base import STORAGE_OPTIONS

__all__ = ['StatesFileError', 'save', 'load', 'FORMAT', 'VERSION']

FORMAT = 'gluon_opt.trainer_states'
VERSION = 1
_JSON = '__states__'
_DIGEST = '__sha256__'

_STORAGE = frozenset(STORAGE_OPTIONS)
#: optimizer attributes that are neither hyperparameters nor state: set by the Trainer from its
#: parameters (multipliers, names, the gradient rescale of the current batch), implementation
#: choices, or caches of live arrays (``cache_attributes``), and the states' storage (recorded
#: apart, see the module docstring)
_NOT_STATE = frozenset(['param_dict', 'rescale_grad', 'idx2name', 'sym_info', 'lr_mult',
                        'wd_mult', 'aggregate_num', 'allow_np_array', 'use_fused']) | _STORAGE
#: ``__init__`` arguments that are not hyperparameters (the storage of the states,
#: ``state_dtype`` and its options, is recorded apart: a file of another storage is converted)
_NOT_HYPER = frozenset(['self', 'param_idx2name', 'sym', 'param_dict', 'begin_num_update',
                        'rescale_grad', 'use_fused']) | _STORAGE


class StatesFileError(ValueError):
    """A states file that cannot be loaded into this trainer: unreadable, empty, truncated,
    corrupt, not in this format (a pickle: see ``allow_pickle``), or holding another optimizer,
    other hyperparameters or other parameter shapes. The message is one line naming the file;
    ``path`` is the file."""

    def __init__(self, path, reason):
        self.path, self.reason = path, ' '.join(str(reason).split())
        super(StatesFileError, self).__init__('states file %s: %s' % (path, self.reason))


class _Missing(object):
    def __repr__(self):
        return '<missing>'


_MISSING = _Missing()


def optimizer_name(opt):
    """``gluon_opt.<name>`` for our optimizers, MXNet's registry key for the others."""
    name = getattr(type(opt), 'name', None)
    if isinstance(name, str) and type(opt).__module__.startswith('gluon_opt'):
        return 'gluon_opt.' + name
    return type(opt).__name__.lower()


def _class_path(obj):
    return '%s.%s' % (type(obj).__module__, type(obj).__qualname__)


def _skipped(obj):
    return _NOT_STATE.union(getattr(obj, 'cache_attributes', ()))


def hyperparameter_names(opt):
    """The attributes of ``opt`` that its ``__init__`` arguments set (``learning_rate`` is
    ``lr``), less the ones the Trainer sets itself."""
    names = set()
    for klass in type(opt).__mro__:
        init = vars(klass).get('__init__')
        if init is None or klass is object:
            continue
        try:
            params = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            continue
        for p in params:
            if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                names.add('lr' if p.name == 'learning_rate' else p.name)
    return sorted(n for n in names - _NOT_HYPER - _NOT_STATE if n in vars(opt))


def _is_plain_object(value):
    return (hasattr(value, '__dict__') and not isinstance(value, (type, types.FunctionType,
                                                                  types.MethodType,
                                                                  types.ModuleType)))


# ---------------------------------------------------------------------------------------------
# Python values -> JSON trees + arrays

class _Encoder(object):
    def __init__(self):
        self.arrays = {}
        self._memo = {}
        self._keep = []  # keeps encoded objects alive, so that their ids stay unique

    def _remember(self, value, node):
        self._memo[id(value)] = len(self._memo)
        self._keep.append(value)
        node['id'] = self._memo[id(value)]
        return node

    def encode(self, value, where):
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return value if math.isfinite(value) else {'float': repr(value)}
        if isinstance(value, np.generic):
            if not isinstance(value, (np.number, np.bool_)):
                raise TypeError('%s is a %s, which the states format does not hold'
                                % (where, type(value).__name__))
            return {'scalar': value.dtype.name, 'value': self.encode(value.item(), where)}
        if isinstance(value, tuple):
            return {'tuple': [self.encode(v, '%s[%d]' % (where, i)) for i, v in enumerate(value)]}
        if id(value) in self._memo:
            return {'ref': self._memo[id(value)]}
        if isinstance(value, nd.NDArray):
            if value.stype != 'default':
                value = value.tostype('default')
            return self._array(value.asnumpy(), value, False)
        if isinstance(value, np.ndarray):
            if value.dtype.hasobject:
                raise TypeError('%s is a NumPy array of Python objects, which the states '
                                'format does not hold' % where)
            return self._array(np.ascontiguousarray(value), value, True)
        if isinstance(value, list):
            node = self._remember(value, {})
            node['list'] = [self.encode(v, '%s[%d]' % (where, i)) for i, v in enumerate(value)]
            return node
        if isinstance(value, dict):
            node = self._remember(value, {})
            node['dict'] = [[self.encode(k, '%s key' % where),
                             self.encode(v, '%s[%r]' % (where, k))] for k, v in value.items()]
            return node
        if isinstance(value, (types.FunctionType, types.BuiltinFunctionType, type)):
            return {'callable': '%s.%s' % (value.__module__, value.__qualname__)}
        if _is_plain_object(value):
            node = self._remember(value, {'object': _class_path(value)})
            skip = _skipped(value)
            node['attrs'] = {k: self.encode(v, '%s.%s' % (where, k))
                             for k, v in vars(value).items() if k not in skip}
            return node
        raise TypeError('%s is a %s, which the states format does not hold'
                        % (where, type(value).__name__))

    def _array(self, array, original, is_numpy):
        name = 'a%d' % len(self.arrays)
        self.arrays[name] = array
        node = self._remember(original, {'array': name, 'dtype': array.dtype.name,
                                         'shape': list(array.shape)})
        if is_numpy:
            node['numpy'] = True
        return node


def _digest(json_bytes, arrays):
    h = hashlib.sha256(json_bytes)
    for name in sorted(arrays):
        a = arrays[name]
        h.update(('%s|%s|%s|' % (name, a.dtype.str, list(a.shape))).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def write(path, document, arrays):
    """``document`` (JSON-able) and ``arrays`` into ``path``, written to a temporary file next to
    it and renamed: an interrupted save leaves the previous file as it was."""
    data = json.dumps(document, allow_nan=False, sort_keys=False).encode('utf-8')
    members = dict(arrays)
    members[_JSON] = np.frombuffer(data, dtype=np.uint8)
    members[_DIGEST] = np.frombuffer(_digest(data, arrays).encode('ascii'), dtype=np.uint8)
    tmp = '%s.tmp-%d' % (path, os.getpid())
    try:
        with open(tmp, 'wb') as f:  # a file object: np.savez would append '.npz' to a name
            np.savez(f, **members)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


# ---------------------------------------------------------------------------------------------
# Reading

def _looks_like_pickle(head):
    return head[:1] == b'\x80'  # the PROTO opcode of pickle protocols 2 and later


def read_bytes(path, size=-1):
    """The file's first ``size`` bytes (all by default), or a ``StatesFileError`` for a missing
    or unreadable file."""
    try:
        with open(path, 'rb') as f:
            return f.read(size)
    except OSError as err:
        raise StatesFileError(path, 'cannot be read (%s)' % (err.strerror or err))


def is_states_archive(head):
    return head[:4] == b'PK\x03\x04'


def parse(path, data=None):
    """``(document, arrays)`` of the states archive ``path`` (or of its bytes ``data``);
    ``StatesFileError`` when it is truncated or corrupt or in another version of the format."""
    try:
        with np.load(io.BytesIO(data) if data is not None else path, allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
    except Exception as err:  # zipfile, zlib, numpy header errors: all mean "corrupt"
        raise StatesFileError(path, 'truncated or corrupt (%s: %s)'
                              % (type(err).__name__, err))
    if _JSON not in arrays or _DIGEST not in arrays:
        raise StatesFileError(path, 'a zip/npz archive but not a gluon_opt states file '
                              '(no %s member)' % _JSON)
    raw = arrays.pop(_JSON).tobytes()
    stored = arrays.pop(_DIGEST).tobytes().decode('ascii', 'replace')
    if _digest(raw, arrays) != stored:
        raise StatesFileError(path, 'corrupt: its SHA-256 checksum does not match its '
                              'contents')
    try:
        document = json.loads(raw.decode('utf-8'))
    except ValueError as err:
        raise StatesFileError(path, 'corrupt (its JSON does not parse: %s)' % err)
    if not isinstance(document, dict) or document.get('format') != FORMAT:
        raise StatesFileError(path, 'not a gluon_opt states file (format %r)'
                              % (document.get('format') if isinstance(document, dict)
                                 else None))
    if document.get('version') != VERSION:
        raise StatesFileError(path, 'version %r of the states format; this gluon_opt reads '
                              'version %d' % (document.get('version'), VERSION))
    return document, arrays


# ---------------------------------------------------------------------------------------------
# JSON trees -> the trainer's objects

class _Mismatch(Exception):
    """A difference between the file and the trainer (becomes a StatesFileError)."""


class _Decoder(object):
    def __init__(self, arrays, ctx, check_hyperparameters):
        self.arrays = arrays
        self.ctx = ctx
        self.check = check_hyperparameters
        self.memo = {}
        #: copy arrays into the template's NDArrays (per-parameter states, freshly created for
        #: the trainer's weights); the optimizer's own arrays are always new ones, so that a
        #: failed load leaves the trainer's arrays untouched
        self.fill_arrays = False

    def _register(self, node, value):
        if 'id' in node:
            self.memo[node['id']] = value
        return value

    def decode(self, node, template=_MISSING, where='value'):
        """The value ``node`` describes; ``template`` is the trainer's current value there
        (NDArrays are filled in place, objects are filled attribute by attribute)."""
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if not isinstance(node, dict):
            raise _Mismatch('%s: unexpected %s in the file' % (where, type(node).__name__))
        if 'ref' in node:
            if node['ref'] not in self.memo:
                raise _Mismatch('%s: dangling reference in the file' % where)
            return self.memo[node['ref']]
        if 'float' in node:
            return float(node['float'])
        if 'scalar' in node:
            return np.dtype(node['scalar']).type(node['value'])
        if 'array' in node:
            return self._array(node, template, where)
        if 'tuple' in node or 'list' in node:
            items = node.get('tuple', node.get('list'))
            kind = 'tuple' if 'tuple' in node else 'list'
            if isinstance(template, (tuple, list)) and len(template) == len(items):
                subs = list(template)
            elif self.fill_arrays and template is not _MISSING and template is not None:
                # a per-parameter state: its structure is the trainer's optimizer's
                raise _Mismatch('%s: the file has a %s of %d, this trainer\'s optimizer makes %s'
                                % (where, kind, len(items), _shape_of(template)))
            else:  # optimizer attributes (L-BFGS's history, ...) are simply replaced
                subs = [_MISSING] * len(items)
            if kind == 'list':
                out = self._register(node, [])
                out.extend(self.decode(n, t, '%s[%d]' % (where, i))
                           for i, (n, t) in enumerate(zip(items, subs)))
                return out
            return tuple(self.decode(n, t, '%s[%d]' % (where, i))
                         for i, (n, t) in enumerate(zip(items, subs)))
        if 'dict' in node:
            out = self._register(node, {})
            for key_node, value_node in node['dict']:
                key = self.decode(key_node, where='%s key' % where)
                sub = template.get(key, _MISSING) if isinstance(template, dict) else _MISSING
                out[key] = self.decode(value_node, sub, '%s[%r]' % (where, key))
            return out
        if 'callable' in node:
            # functions are compared by name, never imported from the file
            here = '%s.%s' % (getattr(template, '__module__', None),
                              getattr(template, '__qualname__', None))
            if here != node['callable']:
                raise _Mismatch('%s: the function %s in the file, %s in this trainer'
                                % (where, node['callable'],
                                   here if callable(template) else repr(template)))
            return template
        if 'object' in node:
            return self._object(node, template, where)
        raise _Mismatch('%s: unknown entry %s in the file' % (where, sorted(node)))

    def _array(self, node, template, where):
        name = node['array']
        if name not in self.arrays:
            raise _Mismatch('%s: array %s is missing from the file' % (where, name))
        array = self.arrays[name]
        if node.get('numpy'):
            return self._register(node, array.copy())
        if isinstance(template, nd.NDArray) and self.fill_arrays:
            if tuple(template.shape) != array.shape or template.dtype != array.dtype:
                raise _Mismatch('%s: %s %s in the file, %s %s in this trainer'
                                % (where, array.dtype.name, array.shape,
                                   np.dtype(template.dtype).name, tuple(template.shape)))
            template[:] = array
            return self._register(node, template)
        if self.fill_arrays and template is not _MISSING and template is not None:
            raise _Mismatch('%s: the file has an array, this trainer\'s optimizer makes a %s'
                            % (where, type(template).__name__))
        ctx = template.context if isinstance(template, nd.NDArray) else self.ctx
        return self._register(node, nd.array(array, ctx=ctx, dtype=array.dtype))

    def _object(self, node, template, where):
        cls = node['object']
        if template is _MISSING or template is None or _class_path(template) != cls:
            raise _Mismatch('%s: the file holds a %s, this trainer has %s' % (
                where, cls, 'none' if template in (_MISSING, None) else
                'a %s' % _class_path(template)))
        self._register(node, template)
        attrs = node.get('attrs', {})
        if isinstance(template, mx.optimizer.Optimizer):
            self._optimizer(template, attrs, where)
        else:  # e.g. a learning-rate scheduler: its attributes are its progress
            for key, sub in attrs.items():
                setattr(template, key, self.decode(sub, getattr(template, key, _MISSING),
                                                   '%s.%s' % (where, key)))
        return template

    def _optimizer(self, opt, attrs, where):
        """Check the hyperparameters, restore the rest; in the file's order, so that a
        reference meets the container it refers to first."""
        hyper = set(hyperparameter_names(opt))
        missing = sorted(hyper - set(attrs))
        if missing:
            raise _Mismatch('%s: hyperparameter %s is missing from the file'
                            % (where, _shown(missing[0])))
        skip = _skipped(opt)
        owner = type(opt).__name__ + ('' if where == 'optimizer' else ' (%s)' % where)
        for key, node in attrs.items():
            if key in skip:
                continue
            here = getattr(opt, key, _MISSING)
            sub = '%s.%s' % (where, key)
            if key not in hyper:  # state: update counts, histories, nested optimizers, ...
                setattr(opt, key, self.decode(node, here, sub))
                continue
            in_file = isinstance(node, dict) and 'object' in node
            if in_file or (_is_plain_object(here) and not callable(here)):
                # a nested optimizer (SAM's base) or a learning-rate scheduler: the same class
                # on both sides, filled attribute by attribute
                if not in_file:
                    raise _Mismatch('%s of %s is a %s in this trainer, %r in the file'
                                    % (_shown(key), owner, _class_path(here),
                                       self.decode(node, _MISSING, sub)))
                self.decode(node, here, sub)
                continue
            value = self.decode(node, here, sub)
            if not _equal(value, here):
                if self.check:
                    raise _Mismatch('hyperparameter %s of %s is %r in this trainer, %r in the '
                                    'file (pass check_hyperparameters=False to take the '
                                    'file\'s)' % (_shown(key), owner, here, value))
                setattr(opt, key, value)


def _equal(a, b):
    """Equal hyperparameter values (numbers by value, NaN equal to NaN, containers by
    content)."""
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return (type(a) is type(b) and len(a) == len(b)
                and all(_equal(x, y) for x, y in zip(a, b)))
    if isinstance(a, dict) or isinstance(b, dict):
        return (isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys()
                and all(_equal(a[k], b[k]) for k in a))
    if isinstance(a, (nd.NDArray, np.ndarray)) or isinstance(b, (nd.NDArray, np.ndarray)):
        return False
    try:
        return bool(a == b) or (a != a and b != b)
    except (TypeError, ValueError):
        return False


def _shape_of(value):
    if isinstance(value, (tuple, list)):
        return 'a %s of %d' % (type(value).__name__, len(value))
    return 'a %s' % type(value).__name__


def _shown(key):
    return 'learning_rate' if key == 'lr' else key


# ---------------------------------------------------------------------------------------------
# The Trainer's side

def _param_info(params):
    out = []
    for i, p in enumerate(params):
        shape = tuple(int(s) for s in p.shape) if p.shape is not None else None
        out.append({'index': i, 'name': p.name, 'shape': list(shape) if shape else shape,
                    'dtype': np.dtype(p.dtype).name})
    return out


def _known(shape):
    return shape is not None and all(s > 0 for s in shape)


def _check_params(trainer, document):
    mine = _param_info(trainer._params)
    theirs = document.get('params')
    if not isinstance(theirs, list):
        raise _Mismatch('the file has no parameter list')
    if len(theirs) != len(mine):
        raise _Mismatch('the file has states for %d parameters, this trainer has %d'
                        % (len(theirs), len(mine)))
    for a, b in zip(mine, theirs):
        label = 'parameter %d (%s here, %s in the file)' % (a['index'], a['name'],
                                                            b.get('name'))
        if _known(a['shape']) and _known(b.get('shape')) and list(a['shape']) != b['shape']:
            raise _Mismatch('%s: shape %s in this trainer, %s in the file'
                            % (label, tuple(a['shape']), tuple(b['shape'])))
        if a['dtype'] != b.get('dtype'):
            raise _Mismatch('%s: dtype %s in this trainer, %s in the file'
                            % (label, a['dtype'], b.get('dtype')))


def _state_updaters(trainer, action, path):
    """``[(updater, context index)]`` that hold the per-parameter states (the kvstore's
    updater, context index None, with ``update_on_kvstore=True``)."""
    if trainer._kvstore is not None and trainer._update_on_kvstore:
        updater = getattr(trainer._kvstore, '_updater', None)
        if trainer._distributed or updater is None:
            raise StatesFileError(
                path, 'cannot %s: with a dist kvstore and update_on_kvstore=True the optimizer '
                'states live on the servers; create the Trainer with update_on_kvstore=False'
                % action)
        return [(updater, None)]
    return [(u, k) for k, u in enumerate(trainer._updaters)]


def save(trainer, path):
    """Write ``trainer``'s optimizer and states to ``path`` (see the module docstring)."""
    opt = trainer._optimizer
    updaters = _state_updaters(trainer, 'save', path)
    enc = _Encoder()
    opt_node = enc.encode(opt, 'optimizer')
    states = updaters[0][0].states
    state_nodes = [[enc.encode(idx, 'index'), enc.encode(s, 'state of parameter %r' % (idx,))]
                   for idx, s in sorted(states.items(), key=lambda kv: (str(type(kv[0])), kv[0]))]
    hyper = {}
    for key in hyperparameter_names(opt):
        try:
            hyper[_shown(key)] = _Encoder().encode(getattr(opt, key), key)
        except TypeError:
            hyper[_shown(key)] = repr(getattr(opt, key))
    document = {
        'format': FORMAT, 'version': VERSION,
        'optimizer': optimizer_name(opt),
        'hyperparameters': hyper,
        'params': _param_info(trainer._params),
        'trainer': trainer._states_extra(),
        'optimizer_state': opt_node,
        'states': state_nodes,
        'state_storage': _storage(opt),
    }
    write(path, document, enc.arrays)


def _storage(opt):
    """How ``opt`` stores its states (``lowprec.settings``), or None for MXNet's own."""
    if opt is None or not hasattr(opt, 'state_dtype'):
        return None
    from .optimizers import lowprec
    return lowprec.settings(opt)


def load(trainer, path, allow_pickle=False, check_hyperparameters=True):
    """Read ``path`` into ``trainer`` (see the module docstring and ``Trainer.load_states``)."""
    head = read_bytes(path, 4)
    if not head:
        raise StatesFileError(path, 'empty')
    if is_states_archive(head):
        document, arrays = parse(path)
    elif allow_pickle:
        document, arrays = _from_pickle(path, read_bytes(path))
    else:
        looks = (' (it looks like a pickle, e.g. from gluon.Trainer.save_states)'
                 if _looks_like_pickle(head) else '')
        raise StatesFileError(path, 'not in gluon_opt\'s states format (an npz archive)%s; '
                              'if it is a pickled MXNet states file that you trust, pass '
                              'allow_pickle=True: unpickling runs any code the file holds'
                              % looks)
    try:
        _restore(trainer, path, document, arrays, check_hyperparameters)
    except _Mismatch as err:
        raise StatesFileError(path, str(err))


def _from_pickle(path, data):
    """A pickled MXNet states file (``(states, optimizer)`` or ``states``), turned into the
    document and arrays of the safe format so that the same checks apply."""
    import pickle
    try:
        obj = pickle.loads(data)  # allow_pickle=True: the caller trusts this file
    except Exception as err:
        raise StatesFileError(path, 'not a readable pickle (%s: %s)'
                              % (type(err).__name__, err))
    if isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[1], mx.optimizer.Optimizer):
        states, opt = obj
    else:
        states, opt = obj, None
    if not isinstance(states, dict):
        raise StatesFileError(path, 'holds a %s, not MXNet trainer states'
                              % type(states).__name__)
    enc = _Encoder()
    try:
        document = {'optimizer': optimizer_name(opt) if opt is not None else None,
                    'optimizer_state': enc.encode(opt, 'optimizer') if opt is not None
                    else None,
                    'state_storage': _storage(opt),
                    'states': [[enc.encode(i, 'index'), enc.encode(s, 'state of %r' % (i,))]
                               for i, s in states.items()]}
    except TypeError as err:
        raise StatesFileError(path, str(err))
    return document, enc.arrays


def _file_storage(document, opt):
    """The file's ``state_storage`` where it differs from ``opt``'s (its states must be
    converted), else None. A file without one holds float32 states."""
    mine = _storage(opt)
    if mine is None:
        return None
    from .optimizers import lowprec
    theirs = document.get('state_storage') or dict(mine, state_dtype='float32')
    valid = (isinstance(theirs, dict) and set(theirs) == set(mine)
             and theirs['state_dtype'] in lowprec.STATE_DTYPES
             and theirs['state_block_size'] in lowprec.BLOCK_SIZES
             and isinstance(theirs['state_min_size'], int) and theirs['state_min_size'] >= 0)
    if not valid:
        raise _Mismatch('the file\'s state_storage %r is not one this gluon_opt reads'
                        % (theirs,))
    return None if theirs == mine else theirs


def _converted(opt, dec, node, idx, weight, storage, where):
    """The state ``node`` of the file, stored as ``storage`` says, in ``opt``'s storage."""
    from .optimizers import lowprec
    with lowprec.use_settings(opt, storage):
        theirs = dec.decode(node, opt.create_state_multi_precision(idx, weight), where)
    ours = opt.create_state_multi_precision(idx, weight)
    if opt._uses_master(weight):  # (master weight, states)
        ours[0][:] = theirs[0]
        theirs, target = theirs[1], ours[1]
    else:
        target = ours
    lowprec.convert(opt, theirs, storage, target, weight.shape)
    return ours


def _snapshot(obj, seen=None):
    """``[(object, copy of its attributes)]`` for ``obj`` and the objects it holds (nested
    optimizers, schedulers): what a failed load puts back."""
    seen = seen if seen is not None else set()
    if id(obj) in seen or not _is_plain_object(obj):
        return []
    seen.add(id(obj))
    out = [(obj, dict(vars(obj)))]
    for value in vars(obj).values():
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if _is_plain_object(v) and not isinstance(v, nd.NDArray):
                out.extend(_snapshot(v, seen))
    return out


def _restore(trainer, path, document, arrays, check_hyperparameters):
    opt = trainer._optimizer
    name = document.get('optimizer')
    node = document.get('optimizer_state')
    if node is not None and (not isinstance(node, dict)
                             or node.get('object') != _class_path(opt)):
        raise _Mismatch('the file holds states of %s, this trainer\'s optimizer is %s'
                        % (name, optimizer_name(opt)))
    if 'params' in document:
        _check_params(trainer, document)
    updaters = _state_updaters(trainer, 'load', path)
    dec = _Decoder(arrays, trainer._contexts[0], check_hyperparameters)
    storage = _file_storage(document, opt)
    snapshot = _snapshot(opt)
    try:
        if node is not None:
            dec.decode(node, opt, 'optimizer')
        entries = []
        for idx_node, state_node in document.get('states', []):
            idx = dec.decode(idx_node, where='index')
            if (isinstance(idx, bool) or not isinstance(idx, int)
                    or not 0 <= idx < len(trainer._params)):
                raise _Mismatch('the file has a state for parameter index %r; this trainer has '
                                '%d parameters' % (idx, len(trainer._params)))
            entries.append((idx, state_node))
        base_memo = dict(dec.memo)
        dec.fill_arrays = True
        restored = []
        for updater, k in updaters:
            states, synced = {}, {}
            for idx, state_node in entries:
                param = trainer._params[idx]
                weights = param._data  # None until (deferred) initialisation
                weight = weights[k or 0] if weights else None
                dec.memo = dict(base_memo)
                where = 'state of parameter %d (%s)' % (idx, param.name)
                if weight is not None and storage is not None:
                    states[idx] = _converted(opt, dec, state_node, idx, weight, storage, where)
                else:
                    template = (opt.create_state_multi_precision(idx, weight)
                                if weight is not None else _MISSING)
                    states[idx] = dec.decode(state_node, template, where)
                # a kvstore's updater moves states to its weights' context on first use
                synced[idx] = weight is not None and k is not None
            restored.append((updater, states, synced))
    except BaseException:
        for obj, attrs in snapshot:
            obj.__dict__.clear()
            obj.__dict__.update(attrs)
        raise
    for updater, states, synced in restored:
        updater.states = states
        updater.states_synced = synced
        updater.optimizer = opt
    extra = document.get('trainer')
    if isinstance(extra, dict):
        trainer._restore_extra(extra)
