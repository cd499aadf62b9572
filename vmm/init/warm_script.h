/* The warm shell's script, shared by sbx-init (ns) and sbx-agent (qemu):
 * `sh -c` of it reads one line from fd 3 and evals it as its whole program,
 * so that $?, exit, a syntax error (2) and a signal end it as `sh -c LINE`
 * would. The line's first character says what it runs as: 'e' an exec
 * (stderr joins stdout and stdin is /dev/null before the line is parsed,
 * so its syntax errors are output too), 'j' a job (stdio as it was given). */
#ifndef SBX_WARM_SCRIPT_H
#define SBX_WARM_SCRIPT_H
#define WARM_SCRIPT "IFS= read -r c <&3 || exit 126; exec 3<&-; " \
	"case $c in e*) exec 2>&1 </dev/null;; esac; eval \"unset c; ${c#?}\""
#endif
