"""The lesson's imports, constants, functions and classes, taken from mnistlab.py without running the lesson."""
import ast
from pathlib import Path
from types import SimpleNamespace

SCRIPT = Path(__file__).resolve().parent.parent / "mnistlab.py"


def load_lesson_parts(script=SCRIPT):
    tree = ast.parse(script.read_text())
    kept = [node for node in tree.body
            if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef))
            or isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) and t.id.isupper() for t in node.targets)]
    namespace = {"__file__": str(script)}
    exec(compile(ast.Module(body=kept, type_ignores=[]), str(script), "exec"), namespace)
    return SimpleNamespace(**{name: value for name, value in namespace.items() if not name.startswith("__")})
