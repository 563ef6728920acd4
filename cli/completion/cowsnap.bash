# bash completion for cowsnap(8)                           -*- shell-script -*-
#
# Verbs and options are read from the cowsnap being completed
# (`cowsnap --help`, `cowsnap VERB --help`), so they follow the binary;
# VG, LV and PV names from its reports (`vgs`, `lvs`, `pvs --noheadings`)
# on the root the command line names: --root, else $COWSNAP_ROOT, else
# $XDG_DATA_HOME/cowsnap, else ~/.local/share/cowsnap. A root that does not
# exist yet is not queried (cowsnap would create it).

# _cowsnap_help_entries SECTION [VERB]: the first column of SECTION
# ("Subcommands", "Options") of the help text, one entry per line.
_cowsnap_help_entries() {
  "$_cowsnap_bin" ${2:+"$2"} --help 2>/dev/null |
    awk -v section="$1:" '
      $0 == section { inside = 1; next }
      /^[^ ]/ || /^$/ { inside = 0 }
      inside && /^  [^ ]/ { sub(/^  /, ""); sub(/   .*/, ""); print }'
}

# Verbs, aliases included ("config, lvmconfig").
_cowsnap_verbs() {
  _cowsnap_help_entries Subcommands | sed 's/ .*//; s/,$//' | tr ',' '\n'
  _cowsnap_help_entries Subcommands | sed -n 's/^[^ ,]*, *//p' | tr ', ' '\n\n'
}

# _cowsnap_options VERB: every option name of VERB, and the global ones.
_cowsnap_options() {
  { _cowsnap_help_entries Options "$1"; _cowsnap_help_entries Options; } |
    sed 's/ .*//' | tr ',' '\n' | sort -u
}

# _cowsnap_value_options VERB: the options of VERB (and the global ones)
# that take a value, with the choices CLI11 shows ("--type TEXT:{a,b}")
# after a space: "--type a,b".
_cowsnap_value_options() {
  { _cowsnap_help_entries Options "$1"; _cowsnap_help_entries Options; } |
    awk '$2 ~ /^(TEXT|INT|UINT|FLOAT)/ {
           choices = ""
           if (match($2, /\{[^}]*\}/)) choices = substr($2, RSTART + 1, RLENGTH - 2)
           n = split($1, names, ",")
           for (i = 1; i <= n; i++) print names[i], choices
         }'
}

_cowsnap_root_dir() {
  local i root=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    if [[ ${COMP_WORDS[i]} == --root ]]; then
      root=${COMP_WORDS[i + 1]:-}
      [[ $root == = ]] && root=${COMP_WORDS[i + 2]:-}
    fi
  done
  if [[ -z $root ]]; then
    if [[ -n ${COWSNAP_ROOT:-} ]]; then
      root=$COWSNAP_ROOT
    elif [[ -n ${XDG_DATA_HOME:-} ]]; then
      root=$XDG_DATA_HOME/cowsnap
    else
      root=${HOME:-.}/.local/share/cowsnap
    fi
  fi
  [[ $root == "~/"* ]] && root=$HOME/${root#"~/"}
  printf '%s\n' "$root"
}

# _cowsnap_names vg|lv|pv|dm: names from the root's reports.
_cowsnap_names() {
  local root
  root=$(_cowsnap_root_dir)
  [[ -d $root ]] || return 0
  case $1 in
    vg) "$_cowsnap_bin" --root "$root" vgs --noheadings -o vg_name ;;
    lv) "$_cowsnap_bin" --root "$root" lvs --noheadings --separator / -o vg_name,lv_name ;;
    pv) "$_cowsnap_bin" --root "$root" pvs --noheadings -o pv_name ;;
    # device-mapper names: VG-LV, a '-' inside a name doubled
    dm) "$_cowsnap_bin" --root "$root" lvs --noheadings --separator / -o vg_name,lv_name |
          sed 's/^ *//; s/-/--/g; s#/#-#' ;;
  esac 2>/dev/null | sed 's/^ *//; s/ *$//'
}

_cowsnap_reply() {
  local IFS=$'\n'
  COMPREPLY+=($(compgen -W "$1" -- "$cur"))
}

_cowsnap_reply_files() {
  local IFS=$'\n'
  compopt -o filenames 2>/dev/null
  COMPREPLY+=($(compgen "${1:--f}" -- "$cur"))
}

_cowsnap() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=""
  local _cowsnap_bin=${COMP_WORDS[0]}
  ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
  COMPREPLY=()
  command -v "$_cowsnap_bin" >/dev/null 2>&1 || _cowsnap_bin=cowsnap
  # "--opt=value": bash splits it at '=' (COMP_WORDBREAKS).
  if [[ $cur == = ]]; then
    cur=""
  elif [[ $prev == = ]] && ((COMP_CWORD > 1)); then
    prev=${COMP_WORDS[COMP_CWORD - 2]}
  fi

  # The verb: the first word that is neither an option nor --root's value.
  local i verb="" verb_at=0 word
  for ((i = 1; i < COMP_CWORD; i++)); do
    word=${COMP_WORDS[i]}
    if [[ $word == --root ]]; then
      ((i++))
      [[ ${COMP_WORDS[i]:-} == = ]] && ((i++))
    elif [[ $word != -* && $word != = ]]; then
      verb=$word verb_at=$i
      break
    fi
  done

  # The value of an option.
  local value_options choices
  value_options=$(_cowsnap_value_options "$verb")
  if [[ $prev == -* ]] && grep -q "^$prev\\( \\|\$\\)" <<<"$value_options"; then
    choices=$(grep "^$prev " <<<"$value_options" | head -n 1 | cut -d' ' -f2)
    case $prev in
      --root) _cowsnap_reply_files -d ;;
      --socket | -U | --plugin | -f | --file | --adddev | --deldev) _cowsnap_reply_files ;;
      --nbdkit) _cowsnap_reply "$(compgen -c -- "$cur")" ;;
      --units) _cowsnap_reply "$(printf '%s\n' h H r R b s k m g t p e)" ;;
      -p | --permission) [[ $verb == serve ]] || _cowsnap_reply $'r\nrw' ;;
      *) [[ -n $choices ]] && _cowsnap_reply "$(tr ',' '\n' <<<"$choices")" ;;
    esac
    return 0
  fi

  if [[ -z $verb ]]; then
    if [[ $cur == -* ]]; then
      _cowsnap_reply "$(_cowsnap_options "")"
    else
      _cowsnap_reply "$(_cowsnap_verbs)"
    fi
    return 0
  fi
  if [[ $cur == -* ]]; then
    _cowsnap_reply "$(_cowsnap_options "$verb")"
    return 0
  fi

  # Positional arguments before this one (options and their values skipped).
  local -a args=()
  local snapshot=0
  for ((i = verb_at + 1; i < COMP_CWORD; i++)); do
    word=${COMP_WORDS[i]}
    case $word in
      -s | --snapshot) snapshot=1 ;;
    esac
    if [[ $word == -* ]]; then
      if [[ ${COMP_WORDS[i + 1]:-} == = ]]; then
        ((i += 2))
      elif grep -q "^$word\\( \\|\$\\)" <<<"$value_options"; then
        ((i++))
      fi
    elif [[ $word != = ]]; then
      args+=("$word")
    fi
  done

  case $verb in
    pvcreate) _cowsnap_reply_files ;;
    pvremove | pvs | pvdisplay) _cowsnap_reply "$(_cowsnap_names pv)" ;;
    vgcreate) ((${#args[@]} == 0)) || _cowsnap_reply_files ;;
    vgextend)
      if ((${#args[@]} == 0)); then _cowsnap_reply "$(_cowsnap_names vg)"; else _cowsnap_reply_files; fi ;;
    vgs | vgdisplay | vgremove | vgcfgbackup | vgcfgrestore | vgck) _cowsnap_reply "$(_cowsnap_names vg)" ;;
    lvcreate)
      if ((snapshot)); then _cowsnap_reply "$(_cowsnap_names lv)"; else _cowsnap_reply "$(_cowsnap_names vg)"; fi ;;
    lvs | lvdisplay) _cowsnap_reply "$(_cowsnap_names vg; _cowsnap_names lv)" ;;
    lvremove | lvextend | lvresize | lvchange | lvconvert) _cowsnap_reply "$(_cowsnap_names lv)" ;;
    lvrename)
      # VG OLD NEW, or VG/OLD NEW
      if ((${#args[@]} == 0)); then
        _cowsnap_reply "$(_cowsnap_names vg; _cowsnap_names lv)"
      elif ((${#args[@]} == 1)) && [[ ${args[0]} != */* ]]; then
        _cowsnap_reply "$(_cowsnap_names lv | sed -n "s#^${args[0]}/##p")"
      fi ;;
    dmsetup)
      if ((${#args[@]} == 0)); then _cowsnap_reply $'table\nstatus'; else _cowsnap_reply "$(_cowsnap_names dm)"; fi ;;
    config | lvmconfig)
      # The settings cowsnap acts on, from `config --type default` (on an
      # existing root only: cowsnap would create a missing one).
      local root
      root=$(_cowsnap_root_dir)
      _cowsnap_reply "$(printf 'activation\n'
        [[ -d $root ]] && "$_cowsnap_bin" --root "$root" config --type default 2>/dev/null |
          sed -n 's/^[[:space:]]*#* *\([a-z_]*\)=.*/activation\/\1/p')" ;;
  esac
  return 0
}

complete -F _cowsnap cowsnap
