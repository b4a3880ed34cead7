#!/bin/sh
# login-check.sh EMAIL [ROLE...]: what a login front end should do next.
# Prints "code" (ask for a 2FA code, then mb-2fa-verify), "allow" (let in
# without a code: exempt, or in the grace period), or "deny".
#
# Every exit status other than 0 and 6 is deny: 7 is the policy's deny, and
# 10 means the store or key cannot be trusted (fail closed). Never write
# "if [ $? -ne 0 ]" or "|| allow": that lets a broken store in.
email=$1
shift
roles=
for r in "$@"; do roles="$roles --role $r"; done
# shellcheck disable=SC2086 # $roles is a list of words on purpose
mb-2fa-policy check --quiet --email "$email" $roles >/dev/null 2>&1
case $? in
    0) echo code ;;
    6) echo allow ;;
    *) echo deny ;;
esac
