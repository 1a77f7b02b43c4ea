# diskimg status in the shell prompt, for bash and BusyBox ash (issue 13/14).
#
#   . /etc/diskimg-prompt.sh                 # from ~/.bashrc, ~/.profile or /etc/profile.d/
#   PS1='[$(diskimg_ps1)] \u@\h:\w\$ '       # single quotes: expanded at every prompt
#
# Shows `diskimg status`'s one line ("psyopsOS-B 20261201-000000 ok", "… TRIAL 2/3", "… FELL BACK
# from B …"). Cheap: the answer is kept in a file for DISKIMG_PS1_TTL seconds (default 60), so
# most prompts only read that file. Never hangs the prompt: status gets DISKIMG_PS1_TIMEOUT
# seconds (default 2, then TERM, a second later KILL) and the prompt says "status timed out".
# An error (no boot disk, …) shows "status error" (run `diskimg status` to see it).
# DISKIMG_PS1_CMD is the command (default "diskimg status"; split on spaces, e.g.
# "node /usr/local/lib/diskimg.mjs status"), DISKIMG_PS1_CACHE the file (default
# ${XDG_RUNTIME_DIR:-$HOME}/.diskimg-status). Needs date -r, timeout -k: coreutils or BusyBox.
diskimg_ps1() {
  _dp_cache=${DISKIMG_PS1_CACHE:-${XDG_RUNTIME_DIR:-$HOME}/.diskimg-status}
  _dp_age=$(( $(date +%s) - $(date -r "$_dp_cache" +%s 2>/dev/null || echo 0) ))
  if [ ! -s "$_dp_cache" ] || [ "$_dp_age" -ge "${DISKIMG_PS1_TTL:-60}" ] || [ "$_dp_age" -lt 0 ]; then
    _dp_line=$(timeout -k 1 "${DISKIMG_PS1_TIMEOUT:-2}" ${DISKIMG_PS1_CMD:-diskimg status} </dev/null 2>/dev/null)
    case $? in
      0 | 1) [ -n "$_dp_line" ] || _dp_line='status error' ;; # 1: not confirmed (the line says why)
      124 | 137 | 143) _dp_line='status timed out' ;;          # coreutils 124, BusyBox 143, KILL 137
      *) _dp_line='status error' ;;
    esac
    printf '%s\n' "$_dp_line" >"$_dp_cache.$$" 2>/dev/null && mv -f "$_dp_cache.$$" "$_dp_cache" 2>/dev/null
    printf '%s' "$_dp_line"
  else
    printf '%s' "$(cat "$_dp_cache")"
  fi
}
