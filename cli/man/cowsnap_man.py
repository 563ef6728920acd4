#!/usr/bin/env python3
"""Builds the POD of cowsnap(8): the hand-written page (cowsnap.pod.in)
with its @GLOBAL_OPTIONS@ and @COMMANDS@ lines replaced by what the built
binary's `cowsnap --help` and `cowsnap VERB --help` print, so that the man
page and --help cannot say different things.

Usage: cowsnap_man.py COWSNAP TEMPLATE OUTPUT

The help text is CLI11's layout: a description, "Usage: ...", sections
("Positionals:", "Options:", "Subcommands:") of entries whose description
starts in column 30 (or on the next line, indented 30, after a long
entry), then free text and "Example(s):" lines.
"""
import os
import re
import subprocess
import sys

SECTIONS = ("Positionals", "Options", "Subcommands")
DESC_COLUMN = 30
# What CLI11 appends to an option's type: kept, as a sentence of its own.
EXTRAS = re.compile(r"\s+(?=(?:Excludes:|Needs:|REQUIRED\b))")


def run_help(cowsnap, *args):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "HOME": "/nonexistent"}
    out = subprocess.run([cowsnap, *args, "--help"], env=env, check=True, capture_output=True, text=True)
    return out.stdout


def parse_help(text):
    """-> dict(description, usage, sections=[(title, [(spec, desc)])], footer=[lines])."""
    lines = text.rstrip("\n").split("\n")
    help_ = {"description": [], "usage": "", "sections": [], "footer": []}
    i = 0
    while i < len(lines) and not lines[i].startswith("Usage:"):
        if lines[i].strip():
            help_["description"].append(lines[i].strip())
        i += 1
    if i == len(lines):
        raise SystemExit("no 'Usage:' line in the help text:\n" + text)
    help_["usage"] = lines[i][len("Usage:"):].strip()
    i += 1
    entries = None
    while i < len(lines):
        line = lines[i]
        title = line[:-1] if line.endswith(":") else None
        if title in SECTIONS:
            entries = []
            help_["sections"].append((title, entries))
        elif not line.strip():
            pass
        elif line.startswith(" " * DESC_COLUMN) and entries:
            spec, desc = entries[-1]
            entries[-1] = (spec, (desc + " " + line.strip()).strip())
        elif line.startswith("  ") and entries is not None:
            continued = i + 1 < len(lines) and lines[i + 1].startswith(" " * DESC_COLUMN)
            if not continued and len(line) > DESC_COLUMN and line[DESC_COLUMN - 1] == " ":
                entries.append((line[:DESC_COLUMN].strip(), line[DESC_COLUMN:].strip()))
            else:
                entries.append((line.strip(), ""))
        else:
            help_["footer"] = lines[i:]
            break
        i += 1
    return help_


def pod_escape(text):
    return text.replace("<", "\0lt").replace(">", "\0gt").replace("\0lt", "E<lt>").replace("\0gt", "E<gt>")


def pod_entry(spec, positional):
    """'-L,--size TEXT Excludes: --extents' -> ('B<-L>, B<--size> I<TEXT>', 'Excludes: --extents')."""
    parts = EXTRAS.split(spec, maxsplit=1)
    head, extras = parts[0], (parts[1] if len(parts) > 1 else "")
    names, _, value = head.partition(" ")
    value = value.strip()
    extras = re.sub(r"\bREQUIRED\b", "Required", extras)
    if positional:
        # "paths TEXT ..." -> "paths ..."; "what TEXT:{table,status}" keeps
        # its choices.
        item = "I<%s>" % pod_escape(names)
        choices = re.search(r"\{[^}]*\}", value)
        if choices:
            item += " " + pod_escape(choices.group(0))
        if value.endswith("..."):
            item += " ..."
        return item, extras
    item = ", ".join("B<%s>" % pod_escape(n.strip()) for n in names.split(","))
    if value:
        item += " I<%s>" % pod_escape(value)
    return item, extras


def pod_footer(footer):
    """Free text as paragraphs, "Example(s):" lines as verbatim blocks."""
    out = []
    examples = []
    paragraph = []

    def flush():
        if paragraph:
            out.extend([" ".join(pod_escape(p) for p in paragraph), ""])
            paragraph.clear()
        if examples:
            out.extend(["Examples:" if len(examples) > 1 else "Example:", ""])
            out.extend(["  " + e for e in examples] + [""])
            examples.clear()

    in_examples = False
    for line in footer:
        m = re.match(r"^Examples?:\s*(.*)$", line)
        if m:
            flush()
            in_examples = True
            if m.group(1):
                examples.append(m.group(1))
        elif not line.strip():
            in_examples = False
        elif in_examples and line[:1].isspace():
            examples.append(line.strip())
        else:
            if examples:
                flush()
            in_examples = False
            paragraph.append(line.strip())
    flush()
    return out


def pod_items(entries, positional):
    out = ["=over 4", ""]
    for spec, desc in entries:
        item, extras = pod_entry(spec, positional)
        out.extend(["=item " + item, ""])
        if desc:
            out.extend([pod_escape(desc), ""])
        if extras:
            out.extend([pod_escape(extras) + ".", ""])
    out.extend(["=back", ""])
    return out


def pod_verb(name, aliases, help_):
    out = ["=head2 %s" % name, ""]
    out.extend([" cowsnap %s" % help_["usage"], ""])
    out.extend([pod_escape(" ".join(help_["description"])), ""])
    if aliases:
        out.extend(["Also spelt B<%s>." % "B<, >".join(aliases), ""])
    for title, entries in help_["sections"]:
        if not entries:
            continue
        if title == "Positionals":
            out.extend(["Arguments:", ""])
        else:
            out.extend(["%s:" % title, ""])
        out.extend(pod_items(entries, title == "Positionals"))
    out.extend(pod_footer(help_["footer"]))
    return out


def main():
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    cowsnap, template, output = sys.argv[1:]
    top = parse_help(run_help(cowsnap))
    sections = dict(top["sections"])
    if "Subcommands" not in sections:
        raise SystemExit("`cowsnap --help` lists no subcommands")
    commands = []
    for spec, _ in sections["Subcommands"]:
        names = [n.strip() for n in spec.split(",")]
        commands.extend(pod_verb(names[0], names[1:], parse_help(run_help(cowsnap, names[0]))))
    global_options = pod_items(sections.get("Options", []), False)
    with open(template, encoding="utf-8") as f:
        page = f.read()
    for marker, lines in (("@GLOBAL_OPTIONS@", global_options), ("@COMMANDS@", commands)):
        if page.count(marker + "\n") != 1:
            raise SystemExit("%s: expected one line %s" % (template, marker))
        page = page.replace(marker + "\n", "\n".join(lines).rstrip("\n") + "\n")
    with open(output + ".tmp", "w", encoding="utf-8") as f:
        f.write(page)
    os.replace(output + ".tmp", output)


if __name__ == "__main__":
    main()
