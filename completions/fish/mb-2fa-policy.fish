# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_mb_2fa_policy_global_optspecs
    string join \n db= config= json q/quiet h/help V/version
end

function __fish_mb_2fa_policy_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_mb_2fa_policy_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_mb_2fa_policy_using_subcommand
    set -l cmd (__fish_mb_2fa_policy_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_needs_command" -l db -d 'The store: an SQLite file, or mariadb://USER@HOST[:PORT]/DB (or mariadb://USER@localhost/DB?socket=PATH; ?password_file=PATH&tls_ca=PATH); no password in the URL. Else [store] of the config file, else /var/lib/mailborder/2fa.db' -r
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_needs_command" -l config -d 'Config file with [store] and [key] (default /etc/mailborder/2fa.toml, read if it exists)' -r -F
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_needs_command" -l json -d 'Print one JSON document on stdout, on success and on failure'
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_needs_command" -s q -l quiet -d 'Print only the essential result (errors still go to stderr)'
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_needs_command" -s h -l help -d 'Print help'
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_needs_command" -s V -l version -d 'Print version'
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_needs_command" -f -a "show" -d 'Show the policy, the exemptions and any warnings'
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_needs_command" -f -a "set" -d 'Change the policy (each change is audited with its old and new value)'
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_needs_command" -f -a "exempt" -d 'Exempt an account from 2FA: a service account, or the break-glass account'
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_needs_command" -f -a "unexempt" -d 'Remove an exemption'
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_needs_command" -f -a "seal" -d 'Re-arm a used break-glass account, after rotating its password'
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_needs_command" -f -a "check" -d 'The login decision: exit 0 ask for a code, 6 let in, 7 keep out, 10 fail closed'
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand show" -l db -d 'The store: an SQLite file, or mariadb://USER@HOST[:PORT]/DB (or mariadb://USER@localhost/DB?socket=PATH; ?password_file=PATH&tls_ca=PATH); no password in the URL. Else [store] of the config file, else /var/lib/mailborder/2fa.db' -r
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand show" -l config -d 'Config file with [store] and [key] (default /etc/mailborder/2fa.toml, read if it exists)' -r -F
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand show" -l json -d 'Print one JSON document on stdout, on success and on failure'
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand show" -s q -l quiet -d 'Print only the essential result (errors still go to stderr)'
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand show" -s h -l help -d 'Print help'
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand set" -l require-all -d 'Require 2FA for every account (switching on starts the grace period)' -r -f -a "on\t''
off\t''"
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand set" -l grace-days -d 'Days an account may log in without 2FA once required [default: 7]' -r
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand set" -l mandatory-role -d 'Role with no grace at all (repeat for several; replaces the list) [default: super-admin]' -r
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand set" -l issuer -d 'Default issuer shown in authenticator apps for new enrollments' -r
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand set" -l db -d 'The store: an SQLite file, or mariadb://USER@HOST[:PORT]/DB (or mariadb://USER@localhost/DB?socket=PATH; ?password_file=PATH&tls_ca=PATH); no password in the URL. Else [store] of the config file, else /var/lib/mailborder/2fa.db' -r
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand set" -l config -d 'Config file with [store] and [key] (default /etc/mailborder/2fa.toml, read if it exists)' -r -F
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand set" -l no-mandatory-roles -d 'Give every role the grace period'
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand set" -l json -d 'Print one JSON document on stdout, on success and on failure'
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand set" -s q -l quiet -d 'Print only the essential result (errors still go to stderr)'
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand set" -s h -l help -d 'Print help'
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand exempt" -l email -d 'Account (email address); trimmed and lower-cased' -r
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand exempt" -l kind -d 'service, or break-glass (every use is alerted until sealed again)' -r -f -a "service\t''
break-glass\t''"
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand exempt" -l reason -d 'Why (recorded in the audit trail)' -r
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand exempt" -l db -d 'The store: an SQLite file, or mariadb://USER@HOST[:PORT]/DB (or mariadb://USER@localhost/DB?socket=PATH; ?password_file=PATH&tls_ca=PATH); no password in the URL. Else [store] of the config file, else /var/lib/mailborder/2fa.db' -r
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand exempt" -l config -d 'Config file with [store] and [key] (default /etc/mailborder/2fa.toml, read if it exists)' -r -F
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand exempt" -l json -d 'Print one JSON document on stdout, on success and on failure'
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand exempt" -s q -l quiet -d 'Print only the essential result (errors still go to stderr)'
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand exempt" -s h -l help -d 'Print help'
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand unexempt" -l email -d 'Account (email address); trimmed and lower-cased' -r
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand unexempt" -l db -d 'The store: an SQLite file, or mariadb://USER@HOST[:PORT]/DB (or mariadb://USER@localhost/DB?socket=PATH; ?password_file=PATH&tls_ca=PATH); no password in the URL. Else [store] of the config file, else /var/lib/mailborder/2fa.db' -r
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand unexempt" -l config -d 'Config file with [store] and [key] (default /etc/mailborder/2fa.toml, read if it exists)' -r -F
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand unexempt" -l json -d 'Print one JSON document on stdout, on success and on failure'
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand unexempt" -s q -l quiet -d 'Print only the essential result (errors still go to stderr)'
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand unexempt" -s h -l help -d 'Print help'
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand seal" -l email -d 'Account (email address); trimmed and lower-cased' -r
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand seal" -l db -d 'The store: an SQLite file, or mariadb://USER@HOST[:PORT]/DB (or mariadb://USER@localhost/DB?socket=PATH; ?password_file=PATH&tls_ca=PATH); no password in the URL. Else [store] of the config file, else /var/lib/mailborder/2fa.db' -r
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand seal" -l config -d 'Config file with [store] and [key] (default /etc/mailborder/2fa.toml, read if it exists)' -r -F
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand seal" -l json -d 'Print one JSON document on stdout, on success and on failure'
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand seal" -s q -l quiet -d 'Print only the essential result (errors still go to stderr)'
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand seal" -s h -l help -d 'Print help'
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand check" -l email -d 'Account (email address); trimmed and lower-cased' -r
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand check" -l role -d 'A role of the account (repeatable), e.g. super-admin' -r
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand check" -l db -d 'The store: an SQLite file, or mariadb://USER@HOST[:PORT]/DB (or mariadb://USER@localhost/DB?socket=PATH; ?password_file=PATH&tls_ca=PATH); no password in the URL. Else [store] of the config file, else /var/lib/mailborder/2fa.db' -r
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand check" -l config -d 'Config file with [store] and [key] (default /etc/mailborder/2fa.toml, read if it exists)' -r -F
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand check" -l json -d 'Print one JSON document on stdout, on success and on failure'
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand check" -s q -l quiet -d 'Print only the essential result (errors still go to stderr)'
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand check" -s h -l help -d 'Print help'
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand help; and not __fish_seen_subcommand_from show set exempt unexempt seal check help" -f -a "show" -d 'Show the policy, the exemptions and any warnings'
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand help; and not __fish_seen_subcommand_from show set exempt unexempt seal check help" -f -a "set" -d 'Change the policy (each change is audited with its old and new value)'
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand help; and not __fish_seen_subcommand_from show set exempt unexempt seal check help" -f -a "exempt" -d 'Exempt an account from 2FA: a service account, or the break-glass account'
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand help; and not __fish_seen_subcommand_from show set exempt unexempt seal check help" -f -a "unexempt" -d 'Remove an exemption'
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand help; and not __fish_seen_subcommand_from show set exempt unexempt seal check help" -f -a "seal" -d 'Re-arm a used break-glass account, after rotating its password'
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand help; and not __fish_seen_subcommand_from show set exempt unexempt seal check help" -f -a "check" -d 'The login decision: exit 0 ask for a code, 6 let in, 7 keep out, 10 fail closed'
complete -c mb-2fa-policy -n "__fish_mb_2fa_policy_using_subcommand help; and not __fish_seen_subcommand_from show set exempt unexempt seal check help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
