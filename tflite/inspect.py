"""Read a TFLite flatbuffer's operator list straight from its schema.

This does not go through an interpreter (which would replace delegated ops by
``DELEGATE``), so it tells exactly which kernels a file asks of the runtime.
"""
from tensorflow.lite.python import schema_py_generated as schema

_BUILTIN_NAMES = {code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
_CUSTOM = schema.BuiltinOperator.CUSTOM


def operator_names(model_bytes):
    """Sorted names of the operators a model uses; custom ops appear as ``CUSTOM:<name>``."""
    model = schema.Model.GetRootAsModel(model_bytes, 0)
    names = set()
    for i in range(model.OperatorCodesLength()):
        opcode = model.OperatorCodes(i)
        # Codes above 127 live in BuiltinCode; DeprecatedBuiltinCode holds the rest.
        code = max(opcode.BuiltinCode(), opcode.DeprecatedBuiltinCode())
        if code == _CUSTOM:
            names.add(f"CUSTOM:{opcode.CustomCode().decode()}")
        else:
            names.add(_BUILTIN_NAMES[code])
    return sorted(names)


def custom_operators(model_bytes):
    """The custom (non-builtin, e.g. Flex) operators a model needs; empty when builtin-only."""
    return [name for name in operator_names(model_bytes) if name.startswith("CUSTOM:")]
