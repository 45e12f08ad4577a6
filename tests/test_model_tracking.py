"""Model weights and image sets are DVC's, never git's: the repository's models/.gitignore and
images/.gitignore keep them out of git before anyone adds them, the digits example writes each
folder whole and `dvc add`s it, and `dvc push`/`dvc pull` carry the files."""

import shutil

import pytest
import torch
from safetensors.torch import save_file

from tests.conftest import REPO, digits_example, digits_training, run


def write_digit_files(project) -> None:
    """What the digits example writes, small: weights, an archive, code, labels, images."""
    folder = project / "models/digits"
    folder.mkdir(parents=True)
    save_file({"weight": torch.arange(12.0).view(3, 4)}, str(folder / "cnn.safetensors"))
    (folder / "wide.pt2").write_bytes(b"an archive")
    (folder / "traced.pt").write_bytes(b"a torchscript file")
    (folder / "net.py").write_text("def build():\n    pass\n")
    (folder / "labels.txt").write_text("zero\none\n")
    (project / "images/digits/zero").mkdir(parents=True)
    (project / "images/digits/zero/0.png").write_bytes(b"not really a png")


@pytest.fixture
def clone(project):
    """The project with the repository's ignore files, as a clone has them."""
    shutil.copy(REPO / ".gitignore", project / ".gitignore")
    shutil.copytree(REPO / "images", project / "images")
    run("git", "add", "-A", cwd=project)
    run("git", "commit", "-q", "-m", "clone", cwd=project)
    return project


def untracked(project) -> list[str]:
    return run("git", "status", "--porcelain", "--untracked-files=all", cwd=project).splitlines()


@pytest.mark.stage
def test_weights_and_images_stay_out_of_git_before_they_are_added(clone):
    project = clone
    write_digit_files(project)
    listed = untracked(project)
    assert "?? models/digits/net.py" in listed and "?? models/digits/labels.txt" in listed
    assert not [line for line in listed if line.endswith((".safetensors", ".pt", ".pt2"))]
    assert not [line for line in listed if "images/digits" in line]


@pytest.mark.stage
def test_the_digits_example_tracks_its_folders_with_dvc_and_push_pull_carry_them(clone):
    project = clone
    write_digit_files(project)
    weights = (project / "models/digits/cnn.safetensors").read_bytes()
    digits_example().track()
    assert (project / "models/digits.dvc").is_file() and (project / "images/digits.dvc").is_file()
    assert not [line for line in untracked(project) if "digits/" in line]
    remote = project.parent / "remote"
    run("dvc", "remote", "add", "-d", "local", str(remote), cwd=project)
    run("dvc", "push", "--quiet", cwd=project)
    shutil.rmtree(project / "models/digits")
    shutil.rmtree(project / "images/digits")
    shutil.rmtree(project / ".dvc/cache")
    run("dvc", "pull", "--quiet", "models/digits.dvc", "images/digits.dvc", cwd=project)
    assert (project / "models/digits/cnn.safetensors").read_bytes() == weights
    assert (project / "images/digits/zero/0.png").read_bytes() == b"not really a png"


@pytest.mark.stage
def test_an_interrupted_training_leaves_no_folder_behind_and_nothing_for_git(clone):
    project = clone
    folder_written = digits_training().folder_written
    with pytest.raises(KeyboardInterrupt), folder_written(project / "models/digits") as output:
        (output / "cnn.safetensors").write_bytes(b"half")
        (output / "net.py").write_text("half")
        assert run("git", "check-ignore", str(output / "net.py"), cwd=project)
        assert run("dvc", "check-ignore", str(output / "net.py"), cwd=project)
        raise KeyboardInterrupt
    assert sorted(path.name for path in (project / "models").iterdir()) == \
        sorted(path.name for path in (REPO / "models").iterdir())
    assert not untracked(project)


def test_a_finished_folder_replaces_the_old_one_whole(tmp_path):
    folder = tmp_path / "digits"
    folder.mkdir()
    (folder / "old.pt").write_bytes(b"old")
    with digits_training().folder_written(folder) as output:
        (output / "new.pt").write_bytes(b"new")
        assert (folder / "old.pt").is_file()
    assert [path.name for path in tmp_path.iterdir()] == ["digits"]
    assert [path.name for path in folder.iterdir()] == ["new.pt"]
