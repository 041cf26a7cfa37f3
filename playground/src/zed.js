// Highlighting for Headwater's schema language: SpiceDB's (definition, relation, permission, caveat, use,
// import, partial) plus the lineage constructs (classification, levels, categories, cleared, lineage,
// declassify ... by, upstream(...)).
import { StreamLanguage, HighlightStyle, syntaxHighlighting } from "@codemirror/language";
import { tags as t } from "@lezer/highlight";

const DECLARATIONS = new Set(["definition", "relation", "permission", "caveat", "use", "import", "partial",
  "classification", "lineage", "declassify"]);
const LINEAGE = new Set(["levels", "categories", "cleared", "upstream", "by"]);
const OPERATORS_WORDS = new Set(["with", "nil", "self", "all", "any", "expiration", "and", "or", "in"]);

export const zed = StreamLanguage.define({
  name: "zed",
  startState: () => ({ comment: false }),
  token(stream, state) {
    if (state.comment) {
      if (stream.match(/^.*?\*\//)) state.comment = false;
      else stream.skipToEnd();
      return "comment";
    }
    if (stream.eatSpace()) return null;
    if (stream.match("//")) { stream.skipToEnd(); return "lineComment"; }
    if (stream.match("/*")) { state.comment = true; return "comment"; }
    if (stream.match(/^"(?:[^"\\]|\\.)*"?/)) return "string";
    if (stream.match(/^-?\d+(\.\d+)?/)) return "number";
    if (stream.match(/^(->|\.all|\.any|[+&\-=|<>*#:(){},])/)) {
      const op = stream.current();
      return "{}()".includes(op) ? "bracket" : "operator";
    }
    if (stream.match(/^[A-Za-z_][A-Za-z0-9_/]*/)) {
      const word = stream.current();
      if (DECLARATIONS.has(word)) return "keyword";
      if (LINEAGE.has(word)) return "atom";
      if (OPERATORS_WORDS.has(word)) return "modifier";
      return "variableName";
    }
    stream.next();
    return null;
  },
  languageData: { commentTokens: { line: "//", block: { open: "/*", close: "*/" } } },
});

export const zedHighlight = syntaxHighlighting(HighlightStyle.define([
  { tag: t.keyword, color: "#7c3aed", fontWeight: "600" },
  { tag: t.atom, color: "#b45309", fontWeight: "600" },
  { tag: t.modifier, color: "#0e7490" },
  { tag: [t.lineComment, t.comment], color: "#6b7280", fontStyle: "italic" },
  { tag: t.string, color: "#15803d" },
  { tag: t.number, color: "#be123c" },
  { tag: t.operator, color: "#2563eb" },
  { tag: t.variableName, color: "#111827" },
]));
