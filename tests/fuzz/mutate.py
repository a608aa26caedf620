"""Mutations of the fuzz harness's inputs, all drawn from a seeded ``numpy.random.Generator``:
bytes (flips, truncation, inserted garbage, emptied) and structure (XML elements and JSON values
removed, swapped or given values of the wrong kind)."""
import json
import xml.etree.ElementTree as ElementTree

# Values a field may be given instead of its own: wrong kinds, out of range, empty, huge.
ODD_VALUES = ("", "abc", "-5", "0", "1e309", "nan", "99999999999", "3.5", "-0", "\x00", "ü" * 40)
ODD_JSON = (None, "", "abc", -1, 0, 1e308, 2 ** 63, 10 ** 400, [], {}, [1, 2], True, 3.5)


def _offset(data, rng):
    """A position in ``data``, half the time in its first 64 bytes, where the headers are."""
    head = min(len(data), 64)
    return int(rng.integers(0, head)) if head and rng.random() < 0.5 else int(rng.integers(0, max(len(data), 1)))


def flip(data, rng):
    """``data`` with 1 to 8 bytes xor-ed with random non-zero values."""
    data = bytearray(data)
    for _ in range(int(rng.integers(1, 9)) if data else 0):
        data[_offset(data, rng)] ^= int(rng.integers(1, 256))
    return bytes(data)


def truncate(data, rng):
    """The first 0 to len - 1 bytes of ``data``."""
    return data[:int(rng.integers(0, max(len(data), 1)))]


def garbage(data, rng):
    """``data`` with 1 to 64 random bytes inserted somewhere."""
    at = _offset(data, rng)
    return data[:at] + rng.integers(0, 256, int(rng.integers(1, 65)), dtype="uint8").tobytes() + data[at:]


def empty(data, rng):
    return b""


BYTE_MUTATIONS = {"flip": flip, "truncate": truncate, "garbage": garbage, "empty": empty}


def mutate_bytes(data, rng, weights=(4, 2, 2, 1)):
    """``(name, mutated bytes)`` of one byte mutation of ``data`` chosen by ``weights``."""
    name = str(rng.choice(list(BYTE_MUTATIONS), p=[w / sum(weights) for w in weights]))
    return name, BYTE_MUTATIONS[name](data, rng)


def mutate_xml(text, rng):
    """``(name, text)``: one element removed, duplicated or renamed, two leaves' texts swapped, or a
    leaf's text made odd. Unparseable ``text`` is returned as it is."""
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError:
        return "unparseable", text
    parents = {child: parent for parent in root.iter() for child in parent}
    elements = list(parents)
    leaves = [e for e in elements if not len(e)]
    name = str(rng.choice(["remove", "swap", "odd", "duplicate", "rename"]))
    element = elements[int(rng.integers(len(elements)))]
    if name == "remove":
        parents[element].remove(element)
    elif name == "duplicate":
        parents[element].append(element)
    elif name == "rename":
        element.tag = str(rng.choice(["x", element.tag.upper(), element.tag + "s"]))
    elif name == "swap" and len(leaves) > 1:
        a, b = rng.choice(len(leaves), 2, replace=False)
        leaves[a].text, leaves[b].text = leaves[b].text, leaves[a].text
    else:
        name = "odd"
        leaves[int(rng.integers(len(leaves)))].text = str(rng.choice(ODD_VALUES))
    return f"xml-{name}", ElementTree.tostring(root, encoding="unicode")


def _slots(value):
    """Every ``(container, key)`` under a JSON value."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        yield value, key
        yield from _slots(child)


def mutate_json(value, rng):
    """``(name, value)`` with one slot removed, given an odd value, or swapped with a sibling (deep copy)."""
    value = json.loads(json.dumps(value))
    slots = list(_slots(value))
    container, key = slots[int(rng.integers(len(slots)))]
    name = str(rng.choice(["remove", "odd", "swap"]))
    siblings = list(container) if isinstance(container, dict) else list(range(len(container)))
    if name == "remove":
        del container[key]
    elif name == "swap" and len(siblings) > 1:
        other = siblings[int(rng.integers(len(siblings)))]
        container[key], container[other] = container[other], container[key]
    else:
        name = "odd"
        container[key] = ODD_JSON[int(rng.integers(len(ODD_JSON)))]
    return f"json-{name}", value
