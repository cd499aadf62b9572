/* The warm shell's script, shared by sbx-init (ns) and sbx-agent (qemu):
 * `sh -c` of it reads one line from fd 3 and evals it as its whole program,
 * so that $?, exit, a syntax error (2) and a signal end it as `sh -c LINE`
 * would. */
#ifndef SBX_WARM_SCRIPT_H
#define SBX_WARM_SCRIPT_H
#define WARM_SCRIPT "IFS= read -r c <&3 || exit 126; exec 3<&-; eval \"unset c; $c\""
#endif
