"""The manual pages: each renders with man -l without a warning; every public
function is in its area's page (and `man FUNCTION` finds it); no page names a
function, type or constant that the headers do not have; shmkit(1) has every
command and option that --help lists. The pages are those the build made
(man/mkman.py); the truth they are held to is the compiler's reading of the
headers and the command's own --help."""
import os
import re
import shutil
import subprocess

import pytest

import mkman
from conftest import BIN, INCLUDE, MAN, declared_functions, header_identifiers, run

AREAS = ["segment", "array", "bits", "value", "sync", "queue", "pool"]
ENV = dict(os.environ, LC_ALL="C.UTF-8", MANWIDTH="80")
ENV.pop("MAN_KEEP_FORMATTING", None)


def render(path, cwd=None):
    """The page as man -l shows it, failing on any warning of man or groff."""
    p = subprocess.run(["man", "--warnings", "-l", path], capture_output=True, text=True, env=ENV, cwd=cwd)
    assert p.returncode == 0, (path, p.stderr)
    assert not p.stderr.strip(), "%s: %s" % (path, p.stderr)
    assert "NAME" in p.stdout and "SYNOPSIS" in p.stdout, p.stdout[:500]
    return p.stdout


def pages(man=MAN):
    out = [os.path.join(man, "man1", "shmkit.1")]
    d = os.path.join(man, "man3")
    out += sorted(os.path.join(d, f) for f in os.listdir(d) if f.startswith("shmkit"))
    return out


def header_areas(include=INCLUDE):
    return sorted(f[:-2] for f in os.listdir(os.path.join(include, "shmkit")) if f.endswith(".h"))


def unknown_names(text, identifiers):
    """sk_ and SK_ names in a page that the headers do not have (names cut
    short as "sk_bits_find_next_*" or "SK_E*" are patterns, not names)."""
    bad = set()
    for m in re.finditer(r"\b(sk_\w+|SK_[A-Z0-9_]+)(\*?)", text):
        name = m.group(1)
        if m.group(2) or name.endswith("_"):
            continue
        if name not in identifiers:
            bad.add(name)
    return sorted(bad)


@pytest.fixture(scope="module")
def rendered():
    return {p: render(p) for p in pages()}


def test_every_area_has_a_page(rendered):
    for area in AREAS + header_areas():
        assert os.path.join(MAN, "man3", "shmkit_%s.3" % area) in rendered, area
    assert os.path.join(MAN, "man3", "shmkit.3") in rendered


def test_every_public_function_is_in_its_area_page(rendered, declared):
    for name, header in declared.items():
        area = os.path.splitext(os.path.basename(header))[0]
        text = rendered[os.path.join(MAN, "man3", "shmkit_%s.3" % area)]
        assert re.search(r"\b%s\(" % name, text), "%s (%s) is not in shmkit_%s(3)" % (name, header, area)
        assert name in rendered[os.path.join(MAN, "man3", "shmkit.3")], name


def test_man_finds_every_function_by_name(declared):
    for name, header in declared.items():
        area = os.path.splitext(os.path.basename(header))[0]
        text = render(os.path.join("man3", name + ".3"), cwd=MAN)
        assert "shmkit_%s" % area in text.split("\n", 1)[0].lower(), (name, text[:200])
    # and no page is left for a function that is gone
    for f in os.listdir(os.path.join(MAN, "man3")):
        if f.startswith("sk_"):
            assert f[:-2] in declared, "man3/%s documents a function no header declares" % f


def test_no_page_names_what_does_not_exist(rendered, identifiers):
    for path, text in rendered.items():
        assert not unknown_names(text, identifiers), "%s names %s, which the headers do not have" % (
            path, ", ".join(unknown_names(text, identifiers)))


def test_the_command_page_has_every_command_and_option(rendered):
    text = rendered[os.path.join(MAN, "man1", "shmkit.1")]
    top = run(BIN, "--help").stdout
    commands = re.findall(r"^  (\w+)\s", top.split("Commands:")[1], re.M)
    assert len(commands) >= 9, top
    sections = re.split(r"^   shmkit (\w+)\n", text, flags=re.M)
    found = dict(zip(sections[1::2], sections[2::2]))
    for cmd in commands:
        assert cmd in found, "shmkit(1) has no section for `shmkit %s`" % cmd
        help_text = run(BIN, cmd, "--help").stdout
        for opt in set(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", help_text)):
            assert opt in found[cmd], "shmkit(1): `shmkit %s` lacks %s" % (cmd, opt)


def test_pages_change_with_the_headers(tmp_path):
    """The generator needs no edit for a new function or a new header, and the
    name check catches a contract comment that names a function that is gone."""
    inc = tmp_path / "include"
    shutil.copytree(INCLUDE, inc)
    with open(inc / "shmkit" / "queue.h", "a") as f:
        f.write("\n/* Says how full the queue is, in percent. */\nint sk_queue_fill_percent(const sk_queue *q);\n")
    (inc / "shmkit" / "extra.h").write_text(
        "/*\n * shmkit/extra.h: a new area.\n */\n#ifndef X_H\n#define X_H\n"
        "/* Does nothing; see sk_extra_gone. */\nint sk_extra_nothing(int a, int b);\n#endif\n")
    with open(inc / "shmkit.h", "a") as f:
        f.write('#include "shmkit/extra.h"\n')
    (inc / "shmkit" / "apart.h").write_text(
        "/*\n * shmkit/apart.h: an area with a library of its own, libshmkit_apart.\n */\n"
        "#include <not_here.h>\n/* Joins. */\nint sk_apart_join(peer_t p);\n")
    out = tmp_path / "man"
    mkman.main(["--include", str(inc), "--out", str(out), "--version", "0"])
    apart = render(str(out / "man3" / "shmkit_apart.3"))
    assert "#include <shmkit/apart.h>" in apart and "-lshmkit_apart" in apart and "sk_apart_join(peer_t p);" in apart
    queue = render(str(out / "man3" / "shmkit_queue.3"))
    assert "sk_queue_fill_percent(const sk_queue *q);" in queue and "in percent" in queue
    extra = render(str(out / "man3" / "shmkit_extra.3"))
    assert "sk_extra_nothing(int a, int b);" in extra
    declared = declared_functions(str(inc), tmpdir=str(tmp_path))
    assert {"sk_queue_fill_percent", "sk_extra_nothing", "sk_apart_join"} <= set(declared)
    ids = header_identifiers(str(inc))
    assert unknown_names(extra, ids) == ["sk_extra_gone"]
    assert unknown_names(queue, ids) == []
