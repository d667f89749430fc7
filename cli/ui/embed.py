#!/usr/bin/env python3
"""Write a C file defining `const char NAME[]` and `const size_t NAME_len`
with the bytes of a file (the dashboard page is compiled into the
llmcache binary: one self-contained page, nothing to install)."""
import sys

src, out, name = sys.argv[1], sys.argv[2], sys.argv[3]
data = open(src, 'rb').read()
with open(out, 'w') as f:
    f.write('/* Generated from %s by cli/ui/embed.py. Do not edit. */\n' % src.split('/')[-1])
    f.write('#include <stddef.h>\n\n')
    f.write('extern const char %s[];\nextern const size_t %s_len;\n' % (name, name))
    f.write('const char %s[] = {\n' % name)
    for i in range(0, len(data), 16):
        f.write('    ' + ', '.join('%d' % b for b in data[i:i + 16]) + ',\n')
    f.write('    0\n};\n')
    f.write('const size_t %s_len = %d;\n' % (name, len(data)))
