#!/usr/bin/env python3
"""mkman.py: shmkit's manual pages, made from what they describe.

    mkman.py --include DIR --command PATH --out DIR [--version X.Y.Z]

writes, under --out:

  man1/shmkit.1        the command, from `shmkit --help` and `shmkit COMMAND --help`
                       for every command that `shmkit --help` lists
  man3/shmkit.3        the library: include/shmkit.h's comment, one line per area,
                       and the error codes with their comments (the SK_E* enum)
  man3/shmkit_AREA.3   one page per header include/shmkit/AREA.h: its opening comment
                       (the module's design), its functions with their contract
                       comments, its types and constants, in the header's own order
                       (a header that shmkit.h does not include is in the library its
                       opening comment names, e.g. libshmkit_mpi, or --library's)
  man3/sk_NAME.3       for each function a one-line page (.so) that shows its area's
                       page, so that `man sk_array_create` works

Nothing here is written by hand: a function added to a header, a new header, a
new command or option are in the pages at the next build, and a contract that
changes in a header changes in its page. The headers are read as they are
written in this project (a /* */ comment above what it documents or after it on
the same line, blank lines between groups, /* ---- title ---- */ for sections);
tests/install/test_manpages.py checks the result against the compiler's view of
the headers and against the built library.
"""
import argparse
import os
import re
import subprocess
import sys

# --------------------------------------------------------------------------
# Reading a header

KEYWORDS = {"const", "volatile", "struct", "enum", "union", "unsigned", "signed", "int", "char", "short", "long",
            "void", "float", "double", "static", "inline", "extern", "restrict", "_Bool", "sizeof", "return"}


class Item:
    """One thing at the top level of a header: a comment, a preprocessor line,
    a statement (declaration), or a blank line."""

    def __init__(self, kind, text, line, end_line, trailing=False):
        self.kind, self.text, self.line, self.end_line, self.trailing = kind, text, line, end_line, trailing
        self.note = None  # statements and #defines: the comment after them on their last line


def _skip_comment_or_literal(text, i):
    """If a comment or a literal starts at i, returns the index after it."""
    if text.startswith("/*", i):
        j = text.find("*/", i + 2)
        if j < 0:
            raise ValueError("unterminated comment")
        return j + 2
    if text.startswith("//", i):
        j = text.find("\n", i)
        return len(text) if j < 0 else j
    if text[i] in "\"'":
        q, j = text[i], i + 1
        while j < len(text) and text[j] != q:
            j += 2 if text[j] == "\\" else 1
        return j + 1
    return None


def scan(text):
    """Splits a header into Items, in order."""
    items = []
    i, n, line = 0, len(text), 1
    while i < n:
        c = text[i]
        if c in " \t\n":
            j, newlines = i, 0
            while j < n and text[j] in " \t\n":
                newlines += text[j] == "\n"
                j += 1
            if newlines >= 2:
                items.append(Item("blank", "", line, line))
            line += newlines
            i = j
            continue
        start_line = line
        if text.startswith("/*", i) or text.startswith("//", i):
            j = _skip_comment_or_literal(text, i)
            body = text[i:j]
            prev = next((it for it in reversed(items) if it.kind != "blank"), None)
            trailing = (prev is not None and prev.kind in ("stmt", "pp") and prev.end_line == line
                        and items[-1] is prev)
            items.append(Item("comment", body, line, line + body.count("\n"), trailing))
            line += body.count("\n")
            i = j
            continue
        if c == "#":
            j = i
            while True:
                k = text.find("\n", j)
                k = n if k < 0 else k
                if text[k - 1:k] == "\\":
                    j = k + 1
                    continue
                break
            directive = text[i:k]
            cut = directive.find("/*")
            if cut >= 0:  # a comment after the directive: scanned as a comment of its own
                k = i + cut
                directive = directive[:cut]
            items.append(Item("pp", directive.rstrip(), line, line + directive.count("\n")))
            line += directive.count("\n")
            i = k
            continue
        # extern "C" { ... } around the declarations is not a declaration.
        m = re.match(r'extern\s+"C"\s*\{', text[i:])
        if m or c == "}":
            j = i + (m.end() if m else 1)
            line += text[i:j].count("\n")
            i = j
            continue
        # A statement: up to ';' outside braces and parentheses, or up to the
        # '}' that ends a function definition (a static inline function).
        j, depth = i, 0
        while j < n:
            skip = _skip_comment_or_literal(text, j)
            if skip is not None:
                j = skip
                continue
            ch = text[j]
            if ch in "({[":
                depth += 1
            elif ch in ")}]":
                depth -= 1
                if depth < 0:  # the '}' closing extern "C" {
                    break
                if ch == "}" and depth == 0 and _is_function_definition(text[i:j + 1]):
                    j += 1
                    break
            elif ch == ";" and depth == 0:
                j += 1
                break
            j += 1
        stmt = text[i:j]
        if j >= n and not stmt.rstrip().endswith((";", "}")):
            raise ValueError("line %d: a declaration does not end: %r" % (start_line, stmt[:60]))
        items.append(Item("stmt", stmt, start_line, start_line + stmt.count("\n")))
        line += stmt.count("\n")
        i = j
    return items


def _is_function_definition(stmt):
    head = stmt.split("{", 1)[0]
    return "(" in head and ")" in head and not re.match(r"\s*(typedef|struct|union|enum)\b", head) \
        and "=" not in head


def comment_text(body):
    """The words of a /* */ or // comment, as lines without the decoration."""
    if body.startswith("//"):
        return [body[2:].strip()]
    inner = body[2:-2]
    lines = inner.split("\n")
    out = []
    for ln in lines:
        ln = ln.rstrip()
        m = re.match(r"^\s*\* ?(.*)$", ln)
        out.append(m.group(1) if m else ln.strip())
    while out and not out[0].strip():
        out.pop(0)
    while out and not out[-1].strip():
        out.pop()
    return out


def strip_comments(code):
    out, i = [], 0
    while i < len(code):
        skip = _skip_comment_or_literal(code, i) if code[i] in "/\"'" else None
        if skip is not None and code[i] == "/":
            out.append(" ")
            i = skip
            continue
        if skip is not None:
            out.append(code[i:skip])
            i = skip
            continue
        out.append(code[i])
        i += 1
    return "".join(out)


class Decl:
    """A declaration: a function (prototype or inline definition), a type, a
    #define, or anything else at the top level."""

    def __init__(self, item):
        self.source = item.text.rstrip()
        self.note = None
        code = " ".join(strip_comments(item.text).split())
        self.code = code
        self.kind, self.name = "other", None
        if item.kind == "pp":
            m = re.match(r"#\s*define\s+(\w+)", code)
            self.kind, self.name = "define", m.group(1) if m else None
            return
        if _is_function_definition(code):
            code = code.split("{", 1)[0].strip() + ";"
            self.code = code
        m = re.match(r"typedef\b", code)
        if m:
            fp = re.search(r"\(\s*\*\s*(\w+)\s*\)\s*\(", code)
            self.kind = "type"
            if fp:
                self.name = fp.group(1)
            else:
                ids = re.findall(r"(\w+)\s*(?:\[[^\]]*\]\s*)*;$", code)
                self.name = ids[-1] if ids else None
            return
        if re.match(r"(struct|union|enum)\b[^(]*\{", code):
            m = re.match(r"(?:struct|union|enum)\s+(\w+)", code)
            self.kind, self.name = "type", m.group(1) if m else None
            return
        name = function_name(code)
        if name:
            self.kind, self.name = "function", name

    def is_function(self):
        return self.kind == "function"


def function_name(code):
    """The name of the function a declaration declares, or None."""
    depth = 0
    for m in re.finditer(r"__attribute__\s*\(\(|[()]|(\w+)\s*\(", code):
        tok = m.group(0)
        if tok.startswith("__attribute__"):
            depth += 2
            continue
        if tok == "(":
            depth += 1
            continue
        if tok == ")":
            depth -= 1
            continue
        if depth == 0:
            word = m.group(1)
            if word in KEYWORDS or word.startswith("__"):
                depth += 1
                continue
            if "=" in code[:m.start()]:
                return None
            return word
        depth += 1
    return None


class Header:
    """A header read into: its opening comment and blocks of declarations,
    each with the comments that document them, in the order of the file."""

    def __init__(self, path):
        self.path = path
        self.base = os.path.splitext(os.path.basename(path))[0]
        with open(path, encoding="utf-8") as f:
            self.text = f.read()
        items = scan(self.text)
        self.intro = []
        if items and items[0].kind == "comment":
            self.intro = comment_text(items.pop(0).text)
        self.guard = None
        self.includes = []
        self.blocks = []  # ("section", title) | ("note", lines) | ("decls", comment_lines, [Decl])
        cur = None  # [comment_lines, decls]

        def close():
            nonlocal cur
            if cur is not None:
                if cur[1]:
                    self.blocks.append(("decls", cur[0], cur[1]))
                elif cur[0]:
                    self.blocks.append(("note", cur[0], []))
            cur = None

        last = None  # the last Decl, for comments after it on its line
        for it in items:
            if it.kind == "blank":
                close()
                continue
            if it.kind == "comment":
                words = comment_text(it.text)
                if it.trailing and last is not None:
                    last.note = (last.note or []) + words
                    continue
                m = re.match(r"^-{2,}\s*(.*?)\s*-{2,}$", " ".join(words).strip())
                if m:
                    close()
                    self.blocks.append(("section", m.group(1), []))
                    continue
                if cur is not None and cur[1]:
                    close()
                if cur is None:
                    cur = [[], []]
                if cur[0]:
                    cur[0].append("")
                cur[0].extend(words)
                continue
            if it.kind == "pp":
                d = it.text.strip()
                if re.match(r"#\s*(if|ifdef|ifndef|else|elif|endif|pragma|error|undef)\b", d):
                    m = re.match(r"#\s*ifndef\s+(\w+)", d)
                    if m and self.guard is None:
                        self.guard = m.group(1)
                    last = None
                    continue
                m = re.match(r'#\s*include\s*[<"]([^>"]+)[>"]', d)
                if m:
                    self.includes.append(m.group(1))
                    last = None
                    continue
                decl = Decl(it)
                if decl.name == self.guard:
                    last = None
                    continue
            else:
                decl = Decl(it)
            if cur is None:
                cur = [[], []]
            cur[1].append(decl)
            last = decl
        close()

    def functions(self):
        return [d for b in self.blocks if b[0] == "decls" for d in b[2] if d.is_function()]

    def summary(self):
        """The first sentence of the opening comment, without "shmkit/x.h:"."""
        para = " ".join(paragraphs(self.intro)[0]) if self.intro else self.base
        para = re.sub(r"^\S+\.h:\s*", "", para)
        m = re.match(r"(.+?[.:])(\s|$)", para)
        return (m.group(1) if m else para).rstrip(".:")


def paragraphs(lines):
    out, cur = [], []
    for ln in lines:
        if ln.strip():
            cur.append(ln)
        elif cur:
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


def enum_constants(decl):
    """(name, value, comment) of each constant of an enum declaration."""
    body = decl.source[decl.source.find("{") + 1:decl.source.rfind("}")]
    out = []
    for ln in body.split("\n"):
        m = re.match(r"\s*(\w+)\s*(?:=\s*([^,/]+?))?\s*,?\s*(?:/\*\s*(.*?)\s*\*/)?\s*$", ln)
        if m and m.group(1):
            out.append((m.group(1), (m.group(2) or "").strip(), m.group(3) or ""))
    return out


# --------------------------------------------------------------------------
# Writing roff

def esc(s):
    """Text for roff: backslashes, minus signs, and a leading control character."""
    s = s.replace("\\", "\\e").replace("-", "\\-")
    return s


def line_safe(s):
    return "\\&" + s if s.startswith((".", "'")) else s


def prose(lines, functions):
    """Filled paragraphs: `code` in italics, the names of functions in bold,
    and no identifier broken across lines."""
    out = []
    funcs = set(functions)
    for i, para in enumerate(paragraphs(lines)):
        if i:
            out.append(".PP")
        for ln in para:
            t = re.sub(r"\b([A-Za-z]\w*_\w*)", r"\\%\1", esc(ln.strip()))
            t = re.sub(r"\\%(\w+)", lambda m: "\\%\\fB" + m.group(1) + "\\fR" if m.group(1) in funcs
                       else m.group(0), t)
            t = re.sub(r"`([^`]+)`", r"\\fI\1\\fR", t)
            out.append(line_safe(t))
    return out


def intro_body(h):
    """A header's opening comment without its first sentence (the NAME line)."""
    body = [ln for ln in h.intro]
    if not body:
        return body
    first = re.sub(r"^\S+\.h:\s*", "", body[0])
    paras = paragraphs([first] + body[1:])
    text = " ".join(paras[0])
    m = re.match(r".+?[.:](\s+|$)", text)
    rest = text[m.end():] if m else ""
    out = [rest[0].upper() + rest[1:]] if rest else []
    for p in paras[1:]:
        out += [""] + p
    while out and not out[0]:
        out.pop(0)
    return out


def see_also(names):
    return [".BR \\%%%s (%s)%s" % (n, sec, "," if k < len(names) - 1 else "") for k, (n, sec) in enumerate(names)]


def split_params(params):
    out, depth, cur = [], 0, ""
    for ch in params:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def param_pieces(p):
    """A parameter as [(text, italic)] with its name in italics."""
    m = re.search(r"\(\s*\*\s*(\w+)\s*\)", p)  # a function pointer
    if m:
        return [(p[:m.start(1)], False), (m.group(1), True), (p[m.end(1):], False)]
    m = re.search(r"(\w+)(\s*(?:\[[^\]]*\])*)$", p)
    if not m or p == "..." or m.group(1) in KEYWORDS or m.start(1) == 0 or not p[:m.start(1)].strip():
        return [(p, False)]
    return [(p[:m.start(1)], False), (m.group(1), True), (m.group(2), False)]


def prototype_lines(code, width=78):
    """A declaration as .BI requests: bold, with parameter names in italics,
    wrapped under its opening parenthesis as liburing's pages do."""
    code = code.rstrip(";").strip() + ";"
    open_at = code.find("(")
    fp = re.search(r"\(\s*\*\s*\w+\s*\)\s*\(", code)
    if fp and code.startswith("typedef"):
        open_at = fp.end() - 1
    close_at = code.rfind(")")
    if open_at < 0 or close_at < open_at:
        return [".B " + quote(code)]
    head, params, tail = code[:open_at + 1], split_params(code[open_at + 1:close_at]), code[close_at:]
    pieces_per_param = [param_pieces(p) for p in params]
    lines, cur, cur_len = [], [(head, False)], len(head)
    for k, pieces in enumerate(pieces_per_param):
        sep = "," if k < len(params) - 1 else ""
        text_len = sum(len(t) for t, _ in pieces) + len(sep)
        if k and cur_len + 1 + text_len + (len(tail) if not sep else 0) > width:
            lines.append(cur)
            cur, cur_len = [(" " * len(head), False)], len(head)
        elif k:
            cur.append((" ", False))
            cur_len += 1
        cur.extend(pieces)
        cur.append((sep, False))
        cur_len += text_len
    cur.append((tail, False))
    lines.append(cur)
    return [bi(ln) for ln in lines]


def quote(s):
    return '"' + esc(s).replace('"', '""') + '"'


def bi(pieces):
    """One .BI request from [(text, italic)], starting with bold."""
    merged = []
    for text, italic in pieces:
        if not text:
            continue
        if merged and merged[-1][1] == italic:
            merged[-1] = (merged[-1][0] + text, italic)
        else:
            merged.append((text, italic))
    if merged and merged[0][1]:
        merged.insert(0, ("", False))
    return ".BI " + " ".join(quote(t) for t, _ in merged)


def code_block(text, paragraph=True):
    out = ([".PP"] if paragraph else []) + [".EX"]
    for ln in text.split("\n"):
        ln = ln.rstrip().expandtabs(8)
        ln = re.sub(r"^( {8})+", lambda m: "    " * (len(m.group(0)) // 8), ln)
        out.append(line_safe(esc(ln)) if ln else "")
    out.append(".EE")
    return out


def title(name, section, version, manual):
    # No hyphenation (identifiers stay whole, for reading and for grep) and a ragged right margin.
    return ['.\\" Generated by man/mkman.py from the shmkit sources: edit those, not this file.',
            ".nr HY 0", ".ad l",
            '.TH %s %s "" "shmkit %s" "%s"' % (name.upper().replace("-", "\\-"), section, version, manual)]


# --------------------------------------------------------------------------
# Section 3

RETURN_VALUE = [
    "Functions that can fail return an",
    ".B int",
    "(an",
    ".B int64_t",
    "where a count can exceed 2^31): zero or a non\\-negative count on success, a negative code on",
    "failure: \\-errno for a failure of the operating system, or one of shmkit's own",
    "codes, which lie far below the errno range and are listed in",
    ".BR shmkit (3).",
    ".BR sk_strerror ()",
    "names both.",
    "What each function returns, and which codes, is said with it above.",
]


def area_page(h, headers, umbrella, version, library):
    funcs = [d.name for hh in headers for d in hh.functions()]
    out = title("shmkit_" + h.base, 3, version, "shmkit Library Functions")
    out += [".SH NAME", "shmkit_%s \\- %s" % (h.base, esc(h.summary()))]
    out += [".SH LIBRARY", "shmkit (%s, \\-l%s)" % ("lib" + library, library)]
    out += [".SH SYNOPSIS", ".nf", ".B #include <%s>" % ("shmkit.h" if h.base in umbrella else "shmkit/%s.h"
                                                          % h.base)]
    for kind, _, decls in h.blocks:
        fs = [d for d in decls if d.is_function()] if kind == "decls" else []
        if fs:
            out.append(".PP")
            for d in fs:
                out += prototype_lines(d.code)
    out.append(".fi")
    if intro_body(h):
        out += [".SH DESCRIPTION"] + prose(intro_body(h), funcs)

    def decl_block(comment, decls, has_function):
        """A block as the header has it: its comment, then what it documents.
        Functions are shown as prototypes, anything else as code; a comment
        after a declaration on its line follows it, indented."""
        res = [".PP"]
        if comment:
            res += prose(comment, funcs) + [".br"]
        if not has_function:
            src = "\n".join(d.source + ("  /* %s */" % " ".join(d.note) if d.note else "") for d in decls)
            return res + code_block(src, False)
        res.append(".nf")
        for d in decls:
            if d.kind == "function":
                res += prototype_lines(d.code)
            else:
                res += [".fi"] + code_block(d.source, False) + [".nf"]
            if d.note:
                res += [".fi", ".RS 4"] + prose(d.note, funcs) + [".RE", ".nf"]
        return res + [".fi"]

    functions_part, types_part = [], []
    pending_notes = []
    for kind, comment, decls in h.blocks:
        if kind == "section":
            functions_part += [".SS " + re.sub(r"`([^`]+)`", r"\\fI\1\\fR", quote(comment))]
            continue
        if kind == "note":
            pending_notes.append(comment)
            continue
        has_function = any(d.is_function() for d in decls)
        target = functions_part if has_function else types_part
        for note in pending_notes:
            target += [".PP"] + prose(note, funcs)
        pending_notes = []
        target += decl_block(comment, decls, has_function)
    for note in pending_notes:
        functions_part += [".PP"] + prose(note, funcs)
    if functions_part:
        out += [".SH FUNCTIONS"] + functions_part
    if types_part:
        out += [".SH TYPES AND CONSTANTS"] + types_part
    out += [".SH RETURN VALUE"] + RETURN_VALUE
    out += [".SH SEE ALSO"]
    out += see_also([("shmkit", 3)] + [("shmkit_" + o.base, 3) for o in headers if o is not h] + [("shmkit", 1)])
    return out


def overview_page(umbrella_header, headers, version):
    funcs = [d.name for hh in headers for d in hh.functions()]
    out = title("shmkit", 3, version, "shmkit Library Functions")
    summary = "named, self\\-describing shared memory for many processes"
    out += [".SH NAME", "shmkit \\- " + summary]
    out += [".SH LIBRARY", "shmkit (libshmkit, \\-lshmkit; pkg\\-config \\-\\-cflags \\-\\-libs shmkit)"]
    out += [".SH SYNOPSIS", ".nf", ".B #include <shmkit.h>", ".fi"]
    out += [".SH DESCRIPTION"]
    if umbrella_header is not None and intro_body(umbrella_header):
        out += prose(intro_body(umbrella_header), funcs) + [".PP"]
    out += ["The library's functions, by area, each area in a page of its own:"]
    for h in headers:
        out += [".TP", ".BR \\%%shmkit_%s (3)" % h.base, esc(h.summary()) + ":"]
        names = [d.name for d in h.functions()]
        out.append(", ".join("\\%%\\fB%s\\fR()" % n for n in names) + ("." if names else ""))
    errors = []
    for h in headers:
        for kind, comment, decls in h.blocks:
            if kind != "decls":
                continue
            for d in decls:
                if d.kind in ("type", "other") and re.match(r"(typedef\s+)?enum\b", d.code):
                    consts = enum_constants(d)
                    if consts and all(re.match(r"SK_E[A-Z]", c[0]) for c in consts):
                        errors.append((h, comment, consts))
    if errors:
        out += [".SH ERRORS"]
        for h, comment, consts in errors:
            if comment:
                out += prose(comment, funcs)
            for name, value, what in consts:
                out += [".TP", ".BR %s \\ (%s)" % (name, esc(value)), line_safe(esc(what))]
        out += [".PP", "Any other negative code is \\-errno, as the manual pages of the system calls name them;",
                ".BR sk_strerror ()",
                "describes every code."]
    out += [".SH SEE ALSO"]
    out += see_also([("shmkit_" + h.base, 3) for h in headers] + [("shmkit", 1)])
    return out


# --------------------------------------------------------------------------
# Section 1, from the command's --help

def run_help(command, *args):
    p = subprocess.run([command, *args, "--help"], capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit("mkman: %s %s --help failed (%d): %s" % (command, " ".join(args), p.returncode, p.stderr))
    return p.stdout.rstrip("\n").split("\n")


def parse_help(lines):
    """--help text as (usage_lines, [("para", lines) | ("options", [(spec, text)])])."""
    i, usage = 0, []
    while i < len(lines) and lines[i].strip():
        ln = lines[i]
        if ln.startswith("usage:"):
            usage.append(ln[len("usage:"):].strip())
        else:  # another form, or a continuation indented under the first
            usage.append(ln[len("usage: "):].rstrip() if ln.startswith(" " * len("usage: ")) else ln.strip())
        i += 1
    parts, cur = [], None
    for ln in lines[i:]:
        if not ln.strip():
            cur = None
            continue
        m = re.match(r"^  (-\S.*?)(?:\s{2,}(\S.*))?$", ln)
        if m and not m.group(2):
            # "  --shape A,B,.. array extents": the description starts at the
            # first word with a lower-case letter after the option's own words.
            words = m.group(1).split(" ")
            k = 1
            while k < len(words) and (words[k].startswith("-") or not re.search(r"[a-z]", words[k])):
                k += 1
            m = (" ".join(words[:k]), " ".join(words[k:]) or None)
        elif m:
            m = (m.group(1), m.group(2))
        if m and (cur is None or cur[0] == "options"):
            if cur is None:
                cur = ("options", [])
                parts.append(cur)
            cur[1].append([m[0].strip(), [m[1]] if m[1] else []])
            continue
        if cur is not None and cur[0] == "options" and ln.startswith("   "):
            cur[1][-1][1].append(ln.strip())
            continue
        if cur is None or cur[0] != "para":
            cur = ("para", [])
            parts.append(cur)
        cur[1].append(ln.strip())
    return usage, parts


def help_body(parts):
    out = []
    for kind, content in parts:
        if kind == "para":
            out += [".PP"] + [line_safe(esc(ln)) for ln in content]
        else:
            for spec, text in content:
                out += [".TP", ".B " + quote(spec)] + [line_safe(esc(t)) for t in text]
    return out


def command_page(command, version):
    top = run_help(command)
    usage, parts = parse_help(top)
    commands, desc, after, status = [], [], [], []
    for kind, content in parts:
        if kind == "para" and content and content[0].rstrip(":") == "Commands":
            for ln in content[1:]:
                m = re.match(r"^(\S+)\s+(.*)$", ln)
                if m:
                    commands.append((m.group(1), m.group(2)))
            continue
        if kind == "para":  # "Exit status: ..." lines make EXIT STATUS
            rest = [ln for ln in content if not ln.startswith("Exit status")]
            status += [re.sub(r"^Exit status:?\s*", "", ln) for ln in content if ln.startswith("Exit status")]
            if not rest:
                continue
            content = rest
        (after if commands else desc).append((kind, content))
    if not commands:
        raise SystemExit("mkman: `%s --help` lists no commands" % command)
    summary = " ".join(desc[0][1]).rstrip(".") if desc else "shared memory"
    out = title("shmkit", 1, version, "shmkit Commands")
    out += [".SH NAME", "shmkit \\- " + esc(summary[0].lower() + summary[1:])]
    out += [".SH SYNOPSIS", ".nf"] + [".B " + quote(u) for u in usage]
    helps = {}
    for name, _ in commands:
        helps[name] = parse_help(run_help(command, name))
        out += [".B " + quote(u) for u in helps[name][0]]
    out += [".fi", ".SH DESCRIPTION", line_safe(esc(summary)) + "."] + help_body(desc[1:])
    out += [".PP", "The commands:"]
    for name, what in commands:
        out += [".TP", ".B " + quote(name), line_safe(esc(what))]
    out += help_body(after)
    out += [".SH COMMANDS"]
    for name, what in commands:
        usage_c, parts_c = helps[name]
        out += [".SS " + quote("shmkit " + name), ".nf"] + [".B " + quote(u) for u in usage_c] + [".fi"]
        out += help_body(parts_c)
    if status:
        out += [".SH EXIT STATUS"] + [line_safe(esc(s[0].upper() + s[1:])) for s in status]
    out += [".SH FILES", ".TP", ".I /dev/shm",
            "where named segments live, one file each (a tmpfs file system)"]
    out += [".SH SEE ALSO"] + see_also([("shmkit", 3)])
    return out


# --------------------------------------------------------------------------

def write(path, lines):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def library_of(h, libs):
    """The library a header's functions are in: --library AREA=LIB, else the
    one its opening comment names (libshmkit_mpi, -lshmkit_mpi), else shmkit."""
    if h.base in libs:
        return libs[h.base]
    m = re.search(r"(?:\blib|-l)(shmkit_\w+)", " ".join(h.intro))
    return m.group(1) if m else "shmkit"


def read_headers(include):
    d = os.path.join(include, "shmkit")
    headers = [Header(os.path.join(d, f)) for f in sorted(os.listdir(d)) if f.endswith(".h")]
    umbrella_path = os.path.join(include, "shmkit.h")
    umbrella = Header(umbrella_path) if os.path.exists(umbrella_path) else None
    return umbrella, headers


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--include", required=True, help="the include/ directory")
    ap.add_argument("--command", help="the built shmkit command (for shmkit(1))")
    ap.add_argument("--out", required=True)
    ap.add_argument("--version", default="")
    ap.add_argument("--library", action="append", default=[], metavar="AREA=LIB",
                    help="an area whose functions are in another library than libshmkit (cluster=shmkit_mpi)")
    a = ap.parse_args(argv)
    libs = dict(x.split("=", 1) for x in a.library)
    umbrella, headers = read_headers(a.include)
    in_umbrella = {os.path.splitext(os.path.basename(p))[0] for p in (umbrella.includes if umbrella else [])}
    written = []
    man3 = os.path.join(a.out, "man3")
    os.makedirs(man3, exist_ok=True)
    for h in headers:
        page = "shmkit_%s.3" % h.base
        write(os.path.join(man3, page), area_page(h, headers, in_umbrella, a.version, library_of(h, libs)))
        written.append(page)
        for f in h.functions():
            write(os.path.join(man3, f.name + ".3"), [".so man3/" + page])
            written.append(f.name + ".3")
    write(os.path.join(man3, "shmkit.3"), overview_page(umbrella, headers, a.version))
    written.append("shmkit.3")
    if a.command:
        write(os.path.join(a.out, "man1", "shmkit.1"), command_page(a.command, a.version))
    # Pages of functions that no longer exist must not survive in the build tree.
    for f in os.listdir(man3):
        if f not in written:
            os.unlink(os.path.join(man3, f))
    return 0


if __name__ == "__main__":
    sys.exit(main())
