#!/usr/bin/env python3
"""Generates messages.json, the Kubernetes protobuf field tables `schema::protobuf` decodes with.

Inputs (nothing is fetched; see README.md beside this file):
  --k8s-pb DIR     the `src` directory of the k8s-pb crate (prost-generated Kubernetes messages):
                   field tags, wire types, repeated/optional/map, nested message types.
  --go-binary FILE a Go binary that links k8s.io/api (kubectl): the Go struct fields behind each
                   message, read from the binary's reflect type descriptors. They tell what the
                   proto does not: the JSON name and `omitempty`, whether a field is a pointer
                   (an explicit zero is kept) or a value (a zero is dropped by `omitempty`),
                   `json:",inline"` embedding, and the Go declaration order (the JSON key order).
  --schema FILE    data/definitions-1.36.json.gz: JSON property names, cross-checked against the
                   Go tags (snake_case `cluster_ip` <-> `clusterIP` compared lower-case without
                   underscores).
  --registry FILE  crates/model/src/registry.rs: the served kinds (roots of the closure).

Output: messages.json beside this script, one message a line:
  "k8s.io.api.core.v1.ServicePort": [[tag, "jsonName", "type", "label", "flags"], ...]
  type:  string | bool | int32 | int64 | double | bytes | intstr | quantity | time | microtime
         | duration | fieldsv1 | rawextension | <message name>
  label: "" (singular) | "rep" (repeated) | "map" (map<string, type>)
  flags: "p" Go pointer, "o" omitempty, "i" inlined embedded struct (`json:",inline"`),
         "n" no Go field known (the field is newer than the Go binary; treated as "po")
Fields are in Go declaration order; those without a Go field follow in tag order.
The report (anything that did not map cleanly) goes to stdout.
"""
import argparse
import gzip
import json
import os
import re
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, '..', '..', '..', '..'))

# Messages with their own JSON form (custom MarshalJSON in Go). src/protobuf/table.rs must know
# each name that ends up in the table (duration and rawextension are not reached today).
SPECIAL = {
    'k8s.io.apimachinery.pkg.util.intstr.IntOrString': 'intstr',
    'k8s.io.apimachinery.pkg.api.resource.Quantity': 'quantity',
    'k8s.io.apimachinery.pkg.apis.meta.v1.Time': 'time',
    'k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime': 'microtime',
    'k8s.io.apimachinery.pkg.apis.meta.v1.Duration': 'duration',
    'k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1': 'fieldsv1',
    'k8s.io.apimachinery.pkg.runtime.RawExtension': 'rawextension',
}
# Extra roots besides the served kinds and their lists.
EXTRA_ROOTS = ['k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions']
SCALARS = {'string', 'bool', 'int32', 'int64', 'double', 'bytes'}


# ---------------------------------------------------------------------------------------------
# k8s-pb (prost) source

FIELD_RE = re.compile(r'#\[prost\(([^\]]*)\)\]\s*pub\s+(r#)?(\w+)\s*:(.*?),\s*(?=#\[prost|$)', re.S)


def proto_package(rel_dir):
    """`api/core/v1` -> `k8s.io.api.core.v1` (the Go package path with dots)."""
    parts = rel_dir.split(os.sep)
    return 'k8s.io.' + '.'.join(parts)


def resolve_type(module, ty):
    """The message a prost field type names; `module` is the Rust module path (`['api', 'core', 'v1']`)."""
    inner = re.sub(r'\s', '', ty)
    for wrapper in ('::core::option::Option<', '::prost::alloc::vec::Vec<', '::prost::alloc::boxed::Box<'):
        while inner.startswith(wrapper):
            inner = inner[len(wrapper):-1].strip()
    m = re.match(r'::prost::alloc::collections::BTreeMap<::prost::alloc::string::String,(.*)>$', inner)
    if m:
        inner = m.group(1).rstrip(",")
    path = [p for p in inner.split('::') if p]
    mod = list(module)
    while path and path[0] == 'super':
        mod.pop()
        path.pop(0)
    return '.'.join(['k8s.io'] + mod + path)


def parse_k8s_pb(src):
    messages = {}
    for root, _dirs, files in os.walk(src):
        if 'mod.rs' not in files:
            continue
        rel = os.path.relpath(root, src)
        if rel == '.':
            continue
        text = open(os.path.join(root, 'mod.rs')).read()
        module = rel.split(os.sep)
        pkg = proto_package(rel)
        for sm in re.finditer(r'pub struct (\w+) \{\n(.*?)\n\}', text, re.S):
            name, body = sm.group(1), sm.group(2) + '\n'
            body = '\n'.join(line for line in body.split('\n') if not line.strip().startswith('///'))
            fields = []
            for fm in FIELD_RE.finditer(body):
                attrs, fname, ty = fm.group(1), fm.group(3), fm.group(4)
                tag = int(re.search(r'tag = "(\d+)"', attrs).group(1))
                if attrs.startswith('btree_map'):
                    k, v = re.match(r'btree_map = "(\w+), (\w+)"', attrs).groups()
                    assert k == 'string', attrs
                    label = 'map'
                    kind = v
                else:
                    kind = re.match(r'(\w+)', attrs).group(1)
                    label = 'rep' if 'repeated' in attrs else ''
                if kind == 'message':
                    kind = resolve_type(module, ty)
                elif kind not in SCALARS:
                    raise SystemExit(f'{pkg}.{name}.{fname}: unsupported prost type {attrs}')
                fields.append({'tag': tag, 'rust': fname, 'type': kind, 'label': label})
            messages[f'{pkg}.{name}'] = fields
    return messages


# ---------------------------------------------------------------------------------------------
# Go reflect type descriptors (internal/abi, Go 1.21+; maps as in Go 1.24's swiss tables)

GO_KINDS = {1: 'bool', 2: 'int', 3: 'int8', 4: 'int16', 5: 'int32', 6: 'int64', 7: 'uint', 8: 'uint8',
            9: 'uint16', 10: 'uint32', 11: 'uint64', 12: 'uintptr', 13: 'float32', 14: 'float64',
            17: 'array', 18: 'chan', 19: 'func', 20: 'interface', 21: 'map', 22: 'ptr', 23: 'slice',
            24: 'string', 25: 'struct', 26: 'unsafeptr'}
# Size of each kind's abi type struct, where the optional UncommonType (with the package path) follows.
GO_TYPE_SIZES = {25: 80, 22: 56, 23: 56, 17: 72, 21: 120, 18: 64, 20: 80, 19: 56}


class GoBinary:
    def __init__(self, path):
        self.data = data = open(path, 'rb').read()
        if data[:4] != b'\x7fELF' or data[4] != 2:
            raise SystemExit(f'{path}: not a 64-bit ELF file')
        shoff, = struct.unpack_from('<Q', data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from('<HHH', data, 0x3a)
        secs = [struct.unpack_from('<IIQQQQ', data, shoff + i * shentsize) for i in range(shnum)]
        stroff = secs[shstrndx][4]
        self.sections = {}
        for name, typ, _flags, addr, off, size in secs:
            n = data[stroff + name:data.index(b'\0', stroff + name)].decode()
            self.sections[n] = (addr, off, size)
        self.ranges = [(addr, off, size) for (_n, typ, _f, addr, off, size) in secs if addr and typ != 8]
        # runtime.types, the base of every type and name offset, starts .rodata.
        self.base = self.sections['.rodata'][0]

    def off(self, a):
        for addr, o, size in self.ranges:
            if addr <= a < addr + size:
                return o + (a - addr)
        raise ValueError(hex(a))

    def u64(self, a):
        return struct.unpack_from('<Q', self.data, self.off(a))[0]

    def name(self, a):
        o = self.off(a)
        d = self.data
        flags = d[o]
        o += 1

        def varint():
            nonlocal o
            n = shift = 0
            while True:
                b = d[o]
                o += 1
                n |= (b & 0x7f) << shift
                shift += 7
                if b < 0x80:
                    return n
        n = varint()
        nm = d[o:o + n].decode()
        o += n
        tag = ''
        if flags & 2:
            n = varint()
            tag = d[o:o + n].decode()
        return flags, nm, tag

    def rtype(self, a):
        _size, _ptr, _hash, tflag, _al, _fal, kind, _eq, _gc, stroff, _ptt = struct.unpack_from('<QQIBBBBQQii', self.data, self.off(a))
        _, nm, _ = self.name(self.base + stroff)
        if tflag & 2:
            nm = nm[1:]
        return tflag, kind & 0x1f, nm

    def pkgpath(self, a, kind, tflag):
        if not tflag & 1:
            return ''
        nameoff, = struct.unpack_from('<i', self.data, self.off(a + GO_TYPE_SIZES.get(kind, 48)))
        return self.name(self.base + nameoff)[1] if nameoff else ''

    def describe(self, a, structs):
        tflag, kind, nm = self.rtype(a)
        k = GO_KINDS.get(kind, str(kind))
        if k in ('ptr', 'slice', 'array'):
            return {k: self.describe(self.u64(a + 48), structs)}
        if k == 'map':
            return {'map': [self.describe(self.u64(a + 48), structs), self.describe(self.u64(a + 56), structs)]}
        named = bool(tflag & 4)
        full = (self.pkgpath(a, kind, tflag) + '.' + nm.split('.', 1)[-1]) if named else k
        if k == 'struct' and named and full not in structs:
            structs[full] = None
            fa, fl = self.u64(a + 56), self.u64(a + 64)
            fields = []
            for i in range(fl):
                npos, tp, _foff = struct.unpack_from('<QQQ', self.data, self.off(fa + 24 * i))
                flags, fname, tag = self.name(npos)
                fields.append({'name': fname, 'tag': tag, 'embedded': bool(flags & 8), 'type': self.describe(tp, structs)})
            structs[full] = fields
        return {k: full}

    def structs(self):
        addr, off, size = self.sections['.typelink']
        structs = {}
        for t in struct.unpack_from('<%di' % (size // 4), self.data, off):
            try:
                self.describe(self.base + t, structs)
            except (ValueError, UnicodeDecodeError, struct.error, IndexError):
                pass
        return structs


def go_tag(tag, key):
    m = re.search(key + r':"([^"]*)"', tag)
    return m.group(1) if m else None


def go_messages(binary):
    """Proto message name -> Go fields with their protobuf tag numbers."""
    out = {}
    for full, fields in GoBinary(binary).structs().items():
        if not full.startswith('k8s.io/') or fields is None:
            continue
        msg = full.replace('/', '.')
        gofields = []
        for f in fields:
            pb = go_tag(f['tag'], 'protobuf')
            js = go_tag(f['tag'], 'json')
            if pb is None or js is None or js == '-':
                continue
            num = int(pb.split(',')[1])
            jname, *opts = js.split(',')
            t = f['type']
            gofields.append({'go': f['name'], 'tag': num, 'json': jname, 'omitempty': 'omitempty' in opts,
                             'inline': 'inline' in opts or (f['embedded'] and jname == ''),
                             'pointer': 'ptr' in t, 'gotype': t})
        out[msg] = gofields
    return out


# ---------------------------------------------------------------------------------------------

def norm(s):
    return s.replace('_', '').lower()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--k8s-pb', default='/tmp/k8spb/k8s-pb-0.9.0/src')
    ap.add_argument('--go-binary', default=os.path.realpath(os.popen('command -v kubectl').read().strip() or 'kubectl'))
    ap.add_argument('--schema', default=os.path.join(HERE, '..', 'definitions-1.36.json.gz'))
    ap.add_argument('--registry', default=os.path.join(REPO, 'crates', 'model', 'src', 'registry.rs'))
    ap.add_argument('--out', default=os.path.join(HERE, 'messages.json'))
    args = ap.parse_args()

    pb = parse_k8s_pb(args.k8s_pb)
    go = go_messages(args.go_binary)
    defs = json.load(gzip.open(args.schema))
    # k8s-pb re-cases some message names (`HttpGetAction`, `PodIp`); take the Go (= proto) name,
    # or the schema's, that differs only in case.
    known = {m.lower(): m for m in go}
    known.update({('k8s.io.' + d[len('io.k8s.'):]).lower(): 'k8s.io.' + d[len('io.k8s.'):] for d in defs if d.startswith('io.k8s.')})
    rename = {m: known.get(m.lower(), m) for m in pb}
    pb = {rename[m]: [dict(f, type=rename.get(f['type'], f['type'])) for f in fields] for m, fields in pb.items()}
    registry = open(args.registry).read()
    served = re.findall(r'"(io\.k8s\.[\w.]+)"\)', registry)
    roots = []
    for d in served:
        msg = 'k8s.io.' + d[len('io.k8s.'):]
        roots += [msg, msg + 'List']
    roots += EXTRA_ROOTS

    report = []
    # Closure of the roots.
    order, seen, todo = [], set(), list(roots)
    while todo:
        m = todo.pop(0)
        if m in seen or m in SPECIAL:
            continue
        if m not in pb:
            raise SystemExit(f'message {m} is not in k8s-pb')
        seen.add(m)
        order.append(m)
        todo += [f['type'] for f in pb[m] if f['type'] not in SCALARS]

    # Messages embedded with `json:",inline"` have no definition of their own: their fields are
    # properties of the embedding message's.
    props_of = {}
    for m in order:
        defname = 'io.k8s.' + m[len('k8s.io.'):]
        if defname in defs:
            props_of[m] = defs[defname]
    for m in order:
        for g in go.get(m, []):
            if g['inline']:
                child = next(f['type'] for f in pb[m] if f['tag'] == g['tag'])
                props_of.setdefault(child, props_of.get(m, {}))

    table = {}
    for m in sorted(order):
        defn = props_of.get(m)
        if defn is None:
            report.append(f'{m}: no schema definition')
            defn = {}
        props = list(defn.get('properties', {}))
        required = defn.get('required', [])
        gof = go.get(m)
        if gof is None:
            report.append(f'{m}: no Go struct in the binary; fields guessed from the schema (below)')
            gof = []
        by_tag = {g['tag']: g for g in gof}
        fields = []
        for f in pb[m]:
            g = by_tag.get(f['tag'])
            cands = [p for p in props if norm(p) == norm(f['rust'])]
            if g is not None:
                jname = g['json']
                if g['inline']:
                    pass
                elif cands != [jname]:
                    report.append(f'{m}.{f["rust"]}: Go JSON name {jname!r}, schema candidates {cands}')
                flags = ('p' if g['pointer'] else '') + ('o' if g['omitempty'] else '') + ('i' if g['inline'] else '')
                pos = gof.index(g)
            else:
                if len(cands) != 1:
                    report.append(f'{m}.{f["rust"]} (tag {f["tag"]}): no Go field and no unique schema property ({cands}); left out')
                    continue
                jname = cands[0]
                if jname in required:
                    flags = 'n'
                    how = 'a value without omitempty (schema: required)'
                elif f['label']:
                    flags = 'on'
                    how = 'omitempty'
                else:
                    flags = 'pon'
                    how = 'a pointer with omitempty'
                report.append(f'{m}.{jname} (tag {f["tag"]}): no Go field in the binary; decoded as {how}')
                pos = len(gof) + f['tag']
            fields.append((pos, [f['tag'], jname, SPECIAL.get(f['type'], f['type']), f['label'], flags]))
        for g in gof:
            if g['tag'] not in {f['tag'] for f in pb[m]}:
                report.append(f'{m}.{g["json"]} (Go field {g["go"]}, tag {g["tag"]}): not in k8s-pb; left out')
        table[m] = [x[1] for x in sorted(fields, key=lambda x: x[0])]

    # Drop what only left-out fields reached.
    reach, todo = set(), [r for r in roots if r in table]
    while todo:
        m = todo.pop()
        if m in reach:
            continue
        reach.add(m)
        todo += [f[2] for f in table[m] if f[2] in table]
    table = {m: v for m, v in table.items() if m in reach}

    def json_names(m):
        names = set()
        for _tag, jname, ty, _label, flags in table[m]:
            names |= json_names(ty) if 'i' in flags else {jname}
        return names
    for m in sorted(table):
        defname = 'io.k8s.' + m[len('k8s.io.'):]
        names = json_names(m)
        for p in (defs.get(defname) or {}).get('properties', {}):
            if p not in names and p not in ('apiVersion', 'kind'):
                report.append(f'{m}.{p}: schema property with no protobuf field (newer than k8s-pb); cannot be decoded')

    with open(args.out, 'w') as out:
        out.write('{\n')
        for i, m in enumerate(sorted(table)):
            sep = ',' if i + 1 < len(table) else ''
            out.write(f'{json.dumps(m)}: {json.dumps(table[m], separators=(",", ":"))}{sep}\n')
        out.write('}\n')
    print(f'{len(table)} messages, {sum(len(v) for v in table.values())} fields -> {os.path.relpath(args.out)}')
    for r in report:
        print('  ' + r)


if __name__ == '__main__':
    sys.exit(main())
