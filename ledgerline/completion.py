"""Shell completion for ``ledgerline``, generated from the argument parser itself.

``eval "$(ledgerline completion bash)"`` (or ``zsh``) completes subcommands, their
subcommands and their options. The script is static: it lists what this version's parser
knows, so it never runs Python while completing.
"""

from __future__ import annotations

import argparse


def _tree(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, list[str]]:
    """Command path -> the words that may follow it (subcommands and options)."""
    words: list[str] = []
    tree: dict[str, list[str]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                words.append(name)
                tree.update(_tree(child, f"{prefix} {name}".strip()))
        else:
            words.extend(o for o in action.option_strings if o.startswith("--"))
    tree[prefix] = sorted(set(words))
    return tree


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    tree = _tree(parser)
    cases = "\n".join(
        f'        "{path}") words="{" ".join(words)}" ;;' for path, words in sorted(tree.items())
    )
    bash = f"""_ledgerline() {{
    local cur path word i
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    path=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${{COMP_WORDS[i]}}"
        case "$word" in -*) ;; *) path="${{path:+$path }}$word" ;; esac
    done
    local words=""
    while true; do
        case "$path" in
{cases}
        *) ;;
        esac
        [ -n "$words" ] || [ -z "$path" ] && break
        path="${{path% *}}"; [ "$path" = "${{path% *}}" ] && [ -z "$words" ] && path=""
    done
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}}
complete -F _ledgerline ledgerline"""
    if shell == "zsh":
        return "autoload -U +X bashcompinit && bashcompinit\n" + bash
    return bash
