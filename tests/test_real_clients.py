"""The README followed literally, against real clients: an OpenSSH server on 127.0.0.1, and
JupyterLab driven in headless Chromium."""

import os
import subprocess
import sys
import urllib.request
from urllib.parse import urlparse

import nbformat
from lesson_runs import FIGURES, REPO, RESULT, fresh_clone, lesson_environment, offline
from pages import readme_block, readme_line
from real_systems import chromium_page, free_port, jupyterlab, wait_for_port


def on_this_server(command, server):
    """A README command with only the host, the user and the port made this server's."""
    return (command.replace("alice@", "root@").replace("server.example.org", "127.0.0.1")
            .replace("-p 22 ", f"-p {server.port} ").replace("Port 22", f"Port {server.port}")
            .replace("User alice", "User root"))


def follow_the_readmes_key_steps(server):
    made = server.inside(readme_line("ssh-keygen -t ed25519"), input="\n\n\n")
    assert made.returncode == 0, made.stderr
    config_block = on_this_server(readme_block("Host mnist-server"), server)
    server.inside(f"cat >> ~/.ssh/config <<'EOF'\n{config_block}EOF")
    login_check = readme_line("ssh -o BatchMode=yes mnist-server")
    assert server.inside(login_check).returncode != 0, "logged in before the key was installed"
    # The first connection: the learner checks the host key and answers yes.
    server.inside(f"ssh-keyscan -p {server.port} 127.0.0.1 >> ~/.ssh/known_hosts")
    # Copying the key is the one time the password is typed; SSH_ASKPASS types it here.
    askpass = server.folder / "askpass"
    askpass.write_text(f"#!/bin/sh\necho {server.password}\n")
    askpass.chmod(0o700)
    typing = {**os.environ, "SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force"}
    for copy_key in (readme_line("ssh-copy-id "), readme_line("cat ~/.ssh/id_ed25519.pub | ssh")):
        server.inside("rm -f ~/.ssh/authorized_keys")
        copied = server.inside(on_this_server(copy_key, server), env=typing,
                               stdin=subprocess.DEVNULL)
        assert copied.returncode == 0, (copy_key, copied.stdout, copied.stderr)
        logged_in = server.inside(login_check)
        assert logged_in.returncode == 0 and logged_in.stdout == "", (copy_key, logged_in.stderr)


def test_the_readmes_ssh_key_steps_log_you_in_without_a_password(server):
    follow_the_readmes_key_steps(server)


def test_the_lesson_runs_over_ssh_and_tensorboard_answers_through_the_tunnel(server):
    if server.inside("ssh -o BatchMode=yes mnist-server true").returncode != 0:
        follow_the_readmes_key_steps(server)  # when this test runs on its own
    cloned = server.inside(f"ssh mnist-server {readme_line('git clone ')!r}".replace(
        readme_line("git clone ").split()[2], str(REPO)))
    assert cloned.returncode == 0, cloned.stderr
    # The install itself is the quick start's; the tests' own environment stands in for it.
    server.inside(f"ln -s {sys.prefix} ~/mnistlab/.venv")
    ran = server.inside(readme_line('ssh mnist-server "cd mnistlab'), timeout=300)
    assert ran.returncode == 0 and "Traceback" not in ran.stderr, ran.stderr
    assert RESULT.search(ran.stdout)
    for name in FIGURES:
        assert (server.home / "mnistlab" / "outputs" / f"{name}.png").exists(), name

    board, tunnel_port = free_port(), free_port()
    start_board = readme_line(".venv/bin/tensorboard --logdir").replace("6006", str(board))
    tensorboard = server.start_inside(f"ssh mnist-server 'cd mnistlab && exec {start_board}'")
    tunnel_command = readme_line("ssh -N -o ExitOnForwardFailure=yes -L 6006")
    tunnel_command = tunnel_command.replace("6006:localhost:6006",
                                            f"{tunnel_port}:localhost:{board}")
    try:
        wait_for_port(board, seconds=60)
        tunnel = server.start_inside(tunnel_command)
        wait_for_port(tunnel_port)
        page = urllib.request.urlopen(f"http://127.0.0.1:{tunnel_port}/", timeout=30).read()
        assert b"TensorBoard" in page or b"tensorboard" in page
        # With the laptop's port taken, the tunnel ends at once instead of forwarding nothing.
        second = server.inside(tunnel_command, timeout=30)
        assert second.returncode != 0 and "forward" in second.stderr.lower(), second.stderr
        tunnel.kill()
    finally:
        tensorboard.kill()



ARTEFACTS = REPO / "tests" / "artefacts"


def draw(page, canvas, *points):
    """One stroke through the points (in the canvas's 280 × 280 pixels), with the mouse."""
    box = canvas.bounding_box()
    scale = box["width"] / 280
    at = [(box["x"] + x * scale, box["y"] + y * scale) for x, y in points]
    page.mouse.move(*at[0])
    page.mouse.down()
    for point in at[1:]:
        page.mouse.move(*point, steps=12)
    page.mouse.up()


def test_run_all_in_jupyterlab_then_draw_digits_for_the_network_just_trained(tmp_path):
    clone = tmp_path / "clone"
    clone.mkdir()
    fresh_clone(clone)
    (clone / "pyproject.toml").write_bytes((REPO / "pyproject.toml").read_bytes())
    # Without the stored outputs, so that every output checked below is of this run.
    notebook = nbformat.read(REPO / "mnistlab.ipynb", as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(notebook, clone / "mnistlab.ipynb")
    out_dir = tmp_path / "out"
    environment = offline(lesson_environment(out_dir, sample=1))
    hosts = set()
    with (jupyterlab(clone, environment) as (address, token),
          chromium_page(tmp_path) as (page, expect)):
        page.on("request", lambda request: hosts.add(urlparse(request.url).hostname))
        page.goto(f"{address}/lab/tree/mnistlab.ipynb?token={token}")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        page.wait_for_selector("#jp-main-statusbar >> text=Idle", timeout=60_000)
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.locator('li[data-command="runmenu:run-all"]').click()
        prompts = page.locator(".jp-CodeCell .jp-InputArea-prompt")
        page.wait_for_function(
            """() => { const prompts = [...document.querySelectorAll(
                           '.jp-CodeCell .jp-InputArea-prompt')].map(p => p.textContent);
                       return prompts.length && prompts.every(p => /\\[\\d+\\]/.test(p)); }""",
            timeout=300_000)
        page.wait_for_selector("#jp-main-statusbar >> text=Idle", timeout=60_000)
        code_cells = prompts.count()
        assert code_cells > 10
        assert page.locator('[data-mime-type="application/vnd.jupyter.error"]').count() == 0
        assert page.locator(".jp-OutputArea-output", has_text="Traceback").count() == 0
        images = page.locator(".jp-RenderedImage img")
        assert images.count() == len(FIGURES)
        result = RESULT.search(page.locator(".jp-Notebook").inner_text())
        assert result and "on 500 sample test digits" in page.locator(".jp-Notebook").inner_text()
        ARTEFACTS.mkdir(exist_ok=True)
        images.nth(FIGURES.index("confusion_matrix")).scroll_into_view_if_needed()
        images.nth(FIGURES.index("confusion_matrix")).screenshot(
            path=ARTEFACTS / "confusion_matrix_in_jupyterlab.png")

        # The lesson's pad reads digits drawn with the mouse, with the network just trained.
        canvas = page.locator("canvas.mnistlab-pad-canvas")
        canvas.scroll_into_view_if_needed()
        guess = page.locator(".mnistlab-pad-guess")
        draw(page, canvas, (140, 40), (140, 240))  # a 1: one stroke down
        expect(guess).to_contain_text("your network: 1 (", timeout=30_000)
        page.get_by_role("button", name="Clear").click()
        draw(page, canvas, (70, 60), (210, 60), (120, 230))  # a 7: the bar, and down from it
        expect(guess).to_contain_text("your network: 7 (", timeout=30_000)
        expect(page.locator("canvas.mnistlab-pad-seen")).to_have_count(1)
        page.get_by_role("button", name="Save as PNG").click()
        expect(page.locator(".mnistlab-pad-message")).to_contain_text("drawn_1.png", timeout=30_000)
        page.locator(".mnistlab-pad").screenshot(path=ARTEFACTS / "drawing_pad_in_jupyterlab.png")
        # Strokes faster than the kernel answers: the last drawing is read, nothing queues up.
        page.get_by_role("button", name="Clear").click()
        draw(page, canvas, (140, 40), (140, 240))
        draw(page, canvas, (60, 140), (220, 140))  # at once: a cross now, no longer a 1
        expect(guess).not_to_contain_text("your network: 1 (", timeout=30_000)
        # After a restart the network is gone: the pad says so, in a line.
        page.get_by_role("menuitem", name="Kernel", exact=True).click()
        page.locator('li[data-command="kernelmenu:restart"]').click()
        page.locator(".jp-Dialog .jp-mod-accept").click()  # Restart Kernel?: Restart
        page.wait_for_selector("#jp-main-statusbar >> text=Idle", timeout=60_000)
        draw(page, canvas, (140, 40), (140, 240))
        expect(page.locator(".mnistlab-pad-message")).to_contain_text(
            "The kernel does not answer", timeout=30_000)

        # The script opens as a notebook too: right-click it, Open With, Jupytext Notebook.
        page.locator(".jp-DirListing-item", has_text="mnistlab.py").click(button="right")
        page.locator(".lm-Menu-item", has_text="Open With").hover()
        page.locator(".lm-Menu").last.locator(".lm-Menu-item", has_text="Jupytext Notebook").click()
        page.wait_for_selector('.lm-TabBar-tab.jp-mod-current >> text="mnistlab.py"')
        script_as_notebook = page.locator(".jp-NotebookPanel:visible .jp-CodeCell")
        expect(script_as_notebook).to_have_count(code_cells, timeout=30_000)
    assert (out_dir / "drawn_1.png").is_file()
    assert hosts <= {"127.0.0.1", None}, hosts  # no CDN, no font, nothing but the server
