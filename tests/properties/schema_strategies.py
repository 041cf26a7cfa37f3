"""Hypothesis strategies that build schema syntax trees (valid and merely well-formed)."""

from __future__ import annotations

from hypothesis import strategies as st

from headwater.dsl import ast

_KEYWORDS = {"definition", "caveat", "relation", "permission", "nil", "with", "self", "use", "and", "any", "all",
             "expiration"}

# Names that satisfy SpiceDB's naming rule: 3+ chars, [a-z][a-z0-9_]*[a-z0-9].
_CEL_RESERVED = frozenset({"bool", "bytes", "double", "dyn", "int", "list", "map", "null_type", "string", "type",
                           "uint", "optional_type", "has", "all", "exists", "exists_one", "filter", "true",
                           "false", "null", "in", "as", "break", "const", "continue", "else", "for", "function",
                           "if", "import", "let", "loop", "package", "namespace", "return", "var", "void",
                           "while"})
names = st.from_regex(r"\A[a-z][a-z0-9_]{1,8}[a-z0-9]\Z").filter(lambda n: n not in _KEYWORDS)
type_names = st.one_of(names, st.builds(lambda a, b: f"{a}/{b}", names, names))

comments = st.one_of(
    st.from_regex(r"\A// [a-z ]{0,12}\Z").map(str.rstrip),
    st.from_regex(r"\A/\*\* [a-z ]{1,12}\*/\Z"),
    st.just("/**\n * line one\n * line two\n */"),
)
leading = st.lists(comments, max_size=2).map(lambda cs: tuple(ast.Comment(c) for c in cs))
trailing = st.one_of(st.none(), st.from_regex(r"\A// [a-z]{1,8}\Z").map(ast.Comment))


def _expr(refs: list[str], arrow_rels: list[str]) -> st.SearchStrategy[ast.Expr]:
    leaves: list[st.SearchStrategy[ast.Expr]] = [st.just(ast.Nil())]
    if refs:
        leaves.append(st.sampled_from(refs).map(ast.RelationRef))
    if arrow_rels:
        leaves.append(st.builds(
            lambda r, t, f: ast.Arrow(ast.RelationRef(r), t, f),
            st.sampled_from(arrow_rels), names, st.sampled_from(list(ast.ArrowFunction)),
        ))
    base = st.one_of(*leaves)

    def extend(children: st.SearchStrategy[ast.Expr]) -> st.SearchStrategy[ast.Expr]:
        return st.one_of(
            st.builds(ast.Union, children, children),
            st.builds(ast.Intersection, children, children),
            st.builds(ast.Exclusion, children, children),
        )

    return st.recursive(base, extend, max_leaves=8)


@st.composite
def documents(draw: st.DrawFn, *, valid: bool = True, with_comments: bool = True) -> ast.Document:
    """A document; with ``valid`` it compiles (names resolve, no cycles, no wildcard arrows)."""
    flags = draw(st.lists(st.sampled_from(["expiration", "typechecking"]), unique=True, max_size=2))
    cav_names = draw(st.lists(names, unique=True, max_size=2))
    def_names = draw(st.lists(type_names, unique=True, min_size=1, max_size=4).filter(
        lambda ds: not set(ds) & set(cav_names)))
    lead = leading if with_comments else st.just(())
    trail = trailing if with_comments else st.none()

    items: list[ast.TopLevel] = [ast.UseFlag(f) for f in flags]
    caveats = []
    for name in cav_names:
        # CEL's identifiers (built-in type names, macros, literals) cannot be parameters: SpiceDB v1.54 refuses
        # `caveat c(map int) {...}` with "overlapping identifier for name 'map'" (measured), and so do we.
        params = draw(st.lists(names.filter(lambda n: n not in _CEL_RESERVED), unique=True, min_size=1, max_size=3))
        types = draw(st.lists(st.sampled_from(["int", "string", "bool", "list<int>", "map<string>"]),
                              min_size=len(params), max_size=len(params)))
        exprs = []
        for p, t in zip(params, types):
            exprs.append({"int": f"{p} > 1", "string": f'{p} == "x"', "bool": p,
                          "list<int>": f"{p}.all(i, i > 0)", "map<string>": f'"k" in {p}'}[t])
        parsed = [ast.CaveatType(t.split("<")[0], (ast.CaveatType(t.split("<")[1][:-1]),) if "<" in t else ())
                  for t in types]
        caveats.append(ast.Caveat(name, tuple(ast.CaveatParameter(p, t) for p, t in zip(params, parsed)),
                                  " &&\n".join(exprs), comments=draw(lead)))
    items.extend(caveats)

    plain: dict[str, list[str]] = {}  # definition -> relations with no wildcard (safe for arrows / T#r)
    for d in def_names:
        member_names = draw(st.lists(names, unique=True, max_size=5))
        split = draw(st.integers(0, len(member_names)))
        rel_names, perm_names = member_names[:split], member_names[split:]
        members: list[ast.Member] = []
        plain[d] = []
        for r in rel_names:
            choices = [ast.AllowedType(t) for t in def_names]
            choices += [ast.AllowedType(t, rel) for t, rels in plain.items() for rel in rels]
            wild = draw(st.booleans()) if valid else False
            allowed = draw(st.lists(st.sampled_from(choices), min_size=1, max_size=3, unique=True))
            extra: list[ast.AllowedType] = []
            if wild:
                extra.append(ast.AllowedType(draw(st.sampled_from(def_names)), wildcard=True))
            if cav_names and draw(st.booleans()):
                base = allowed[0]
                extra.append(ast.AllowedType(base.type_name, base.relation, False, (draw(st.sampled_from(cav_names)),)))
            if "expiration" in flags and draw(st.booleans()):
                extra.append(ast.AllowedType(allowed[0].type_name, allowed[0].relation, False, ("expiration",)))
            members.append(ast.Relation(r, tuple(allowed + extra), comments=draw(lead), trailing_comment=draw(trail)))
            if not wild:
                plain[d].append(r)
        arrow_rels = list(plain[d])
        refs = list(rel_names)
        for p in perm_names:
            expr = draw(_expr(refs, arrow_rels))
            members.append(ast.Permission(p, expr, comments=draw(lead), trailing_comment=draw(trail)))
            refs.append(p)  # later permissions may use earlier ones: no cycles
        if draw(st.booleans()):
            members = draw(st.permutations(members))
        items.append(ast.Definition(d, tuple(members), comments=draw(lead), trailing_comment=draw(trail),
                                    inner_comments=draw(lead)))
    if flags:
        rest = items[len(flags):]
        items = items[:len(flags)] + draw(st.permutations(rest))
    else:
        items = draw(st.permutations(items))
    return ast.Document(tuple(items), trailing_comments=draw(lead))
