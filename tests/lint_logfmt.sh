#!/bin/sh
# lint_logfmt.sh - no log call writes a value as key="%s": such a value is not escaped, and
# a message holding a quote (any PostgreSQL error about a constraint) breaks the line for
# every logfmt parser. Values go through tf_log_q() / tf_log_quote() instead.
cd "$(dirname "$0")/.." || exit 2
hits=$(grep -rnE --include='*.c' --include='*.h' '=\\"%s\\"' common producer worker cli | grep -E 'log_(error|warn|info|debug)|tf_log_write' )
if [ -n "$hits" ]; then
    echo "unescaped logfmt values (use tf_log_q):"
    echo "$hits"
    exit 1
fi
# multi-line calls: the format string on the line after log_*( 
hits=$(grep -rnE --include='*.c' '^\s+"[^"]*=\\"%s\\"' common producer worker cli)
if [ -n "$hits" ]; then
    echo "unescaped logfmt values (use tf_log_q):"
    echo "$hits"
    exit 1
fi
echo "logfmt values: all escaped"
