from __future__ import annotations

from recraft_async._bulk._inputs import expand_inputs, is_url


def touch(path, data=b"x"):
    """Create a file and its folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_folder_is_searched_recursively_for_images(tmp_path, monkeypatch):
    """Image suffixes only, any case, sorted; hidden files and folders skipped."""
    monkeypatch.chdir(tmp_path)
    for name in ["in/b.PNG", "in/a.jpg", "in/sub/c.webp", "in/sub/d.jpeg", "in/notes.txt",
                 "in/.hidden.png", "in/.git/e.png"]:  # fmt: skip
        touch(tmp_path / name)
    items = expand_inputs(["in"])
    assert [i.path and i.path.name for i in items] == ["a.jpg", "b.PNG", "c.webp", "d.jpeg"]
    assert all(i.path and i.path.is_absolute() and i.problem is None for i in items)


def test_output_folder_is_never_an_input(tmp_path, monkeypatch):
    """Running on '.' does not pick up the previous run's outputs."""
    monkeypatch.chdir(tmp_path)
    touch(tmp_path / "a.png")
    touch(tmp_path / "recraft-out" / "a.png")
    items = expand_inputs(["."], exclude=tmp_path / "recraft-out")
    assert [i.label for i in items] == ["a.png"]
    assert expand_inputs(["recraft-out"], exclude=tmp_path / "recraft-out") == []


def test_files_urls_lists_and_problems(tmp_path, monkeypatch):
    """An explicit file is kept whatever its suffix; missing ones become problems."""
    monkeypatch.chdir(tmp_path)
    touch(tmp_path / "x.gif")
    touch(tmp_path / "lists" / "rel.png")
    (tmp_path / "lists" / "l.txt").write_text(
        "# a comment\n\nrel.png\nhttps://h.test/u.png\n  \n@inner.txt\n"
    )
    (tmp_path / "lists" / "inner.txt").write_text("missing.png\n")
    items = expand_inputs(["x.gif", "http://h.test/a.jpg", "@lists/l.txt", "nope.png", "@no.txt"])
    labels = [(i.label, i.problem is None) for i in items]
    assert labels == [
        ("x.gif", True),
        ("http://h.test/a.jpg", True),
        ("rel.png", True),
        ("https://h.test/u.png", True),
        ("missing.png", False),
        ("nope.png", False),
        ("@no.txt", False),
    ]
    assert items[2].path == tmp_path / "lists" / "rel.png"
    assert "no such file" in (items[5].problem or "")
    assert "cannot read the list" in (items[6].problem or "")
    # The arguments' own problems are mistypes; a list's missing line is not.
    assert [i.label for i in items if i.mistyped] == ["nope.png", "@no.txt"]


def test_duplicates_are_kept_once(tmp_path, monkeypatch):
    """The same file named twice (or via a folder) is one item."""
    monkeypatch.chdir(tmp_path)
    touch(tmp_path / "d" / "a.png")
    items = expand_inputs(["d/a.png", "d", "./d/a.png", "https://h.test/a", "https://h.test/a"])
    assert [i.label for i in items] == ["d/a.png", "https://h.test/a"]


def test_self_including_list_ends(tmp_path, monkeypatch):
    """A list that includes itself stops at a depth limit instead of looping."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "loop.txt").write_text("@loop.txt\n")
    items = expand_inputs(["@loop.txt"])
    assert len(items) == 1
    assert "nested too deep" in (items[0].problem or "")


def test_is_url():
    """Only http(s) URLs are URLs."""
    assert is_url("HTTPS://x.test/a")
    assert not is_url("ftp://x.test/a")
    assert not is_url("http.png")


def test_labels_are_unique(tmp_path, monkeypatch):
    """Two different files that would read the same are told apart by their full path."""
    monkeypatch.chdir(tmp_path)
    for folder in ("x", "y"):
        touch(tmp_path / folder / "a.png")
        (tmp_path / folder / "l.txt").write_text("a.png\n")
    items = expand_inputs(["@x/l.txt", "@y/l.txt"])
    assert [i.label for i in items] == ["a.png", str(tmp_path / "y" / "a.png")]
