"""Print the first site-packages directory of this interpreter's sys.path
that lies under the install prefix given as argv[1] (empty if none): where
`meson install` puts the module so that `import llmcache` finds it."""
import sys

prefix = sys.argv[1].rstrip("/") + "/"
print(next((d for d in sys.path if d.startswith(prefix) and d.endswith("-packages")), ""))
