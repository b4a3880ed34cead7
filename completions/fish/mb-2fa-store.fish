# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_mb_2fa_store_global_optspecs
    string join \n db= config= json q/quiet key-file= h/help V/version
end

function __fish_mb_2fa_store_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_mb_2fa_store_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_mb_2fa_store_using_subcommand
    set -l cmd (__fish_mb_2fa_store_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c mb-2fa-store -n "__fish_mb_2fa_store_needs_command" -l db -d 'The store: an SQLite file, or mariadb://USER@HOST[:PORT]/DB (or mariadb://USER@localhost/DB?socket=PATH; ?password_file=PATH&tls_ca=PATH); no password in the URL. Else [store] of the config file, else /var/lib/mailborder/2fa.db' -r
complete -c mb-2fa-store -n "__fish_mb_2fa_store_needs_command" -l config -d 'Config file with [store] and [key] (default /etc/mailborder/2fa.toml, read if it exists)' -r -F
complete -c mb-2fa-store -n "__fish_mb_2fa_store_needs_command" -l key-file -d 'Key that seals the TOTP secrets (created with the first enrollment, mode 0400); else [key] file of the config file, else /etc/mailborder/2fa.key' -r -F
complete -c mb-2fa-store -n "__fish_mb_2fa_store_needs_command" -l json -d 'Print one JSON document on stdout, on success and on failure'
complete -c mb-2fa-store -n "__fish_mb_2fa_store_needs_command" -s q -l quiet -d 'Print only the essential result (errors still go to stderr)'
complete -c mb-2fa-store -n "__fish_mb_2fa_store_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mb-2fa-store -n "__fish_mb_2fa_store_needs_command" -s V -l version -d 'Print version'
complete -c mb-2fa-store -n "__fish_mb_2fa_store_needs_command" -f -a "init" -d 'Create a new, empty store (refuses if one exists)'
complete -c mb-2fa-store -n "__fish_mb_2fa_store_needs_command" -f -a "check" -d 'Check that the store can be trusted (exit 10 if not)'
complete -c mb-2fa-store -n "__fish_mb_2fa_store_needs_command" -f -a "copy" -d 'Copy every row of this store into another (SQLite to MariaDB and back)'
complete -c mb-2fa-store -n "__fish_mb_2fa_store_needs_command" -f -a "backup" -d 'Write a consistent, checked copy of an SQLite store to a new file (not the key)'
complete -c mb-2fa-store -n "__fish_mb_2fa_store_needs_command" -f -a "rekey" -d 'Change the key that seals the secrets (the old key is kept until --finish)'
complete -c mb-2fa-store -n "__fish_mb_2fa_store_needs_command" -f -a "seal-plaintext" -d 'Seal the plaintext secrets of a version 1 database, once'
complete -c mb-2fa-store -n "__fish_mb_2fa_store_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand init" -l db -d 'The store: an SQLite file, or mariadb://USER@HOST[:PORT]/DB (or mariadb://USER@localhost/DB?socket=PATH; ?password_file=PATH&tls_ca=PATH); no password in the URL. Else [store] of the config file, else /var/lib/mailborder/2fa.db' -r
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand init" -l config -d 'Config file with [store] and [key] (default /etc/mailborder/2fa.toml, read if it exists)' -r -F
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand init" -l key-file -d 'Key that seals the TOTP secrets (created with the first enrollment, mode 0400); else [key] file of the config file, else /etc/mailborder/2fa.key' -r -F
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand init" -l json -d 'Print one JSON document on stdout, on success and on failure'
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand init" -s q -l quiet -d 'Print only the essential result (errors still go to stderr)'
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand init" -s h -l help -d 'Print help'
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand check" -l db -d 'The store: an SQLite file, or mariadb://USER@HOST[:PORT]/DB (or mariadb://USER@localhost/DB?socket=PATH; ?password_file=PATH&tls_ca=PATH); no password in the URL. Else [store] of the config file, else /var/lib/mailborder/2fa.db' -r
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand check" -l config -d 'Config file with [store] and [key] (default /etc/mailborder/2fa.toml, read if it exists)' -r -F
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand check" -l key-file -d 'Key that seals the TOTP secrets (created with the first enrollment, mode 0400); else [key] file of the config file, else /etc/mailborder/2fa.key' -r -F
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand check" -l json -d 'Print one JSON document on stdout, on success and on failure'
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand check" -s q -l quiet -d 'Print only the essential result (errors still go to stderr)'
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand check" -s h -l help -d 'Print help'
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand copy" -l to -d 'The target store: an SQLite file or a mariadb:// URL (created if absent)' -r
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand copy" -l db -d 'The store: an SQLite file, or mariadb://USER@HOST[:PORT]/DB (or mariadb://USER@localhost/DB?socket=PATH; ?password_file=PATH&tls_ca=PATH); no password in the URL. Else [store] of the config file, else /var/lib/mailborder/2fa.db' -r
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand copy" -l config -d 'Config file with [store] and [key] (default /etc/mailborder/2fa.toml, read if it exists)' -r -F
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand copy" -l key-file -d 'Key that seals the TOTP secrets (created with the first enrollment, mode 0400); else [key] file of the config file, else /etc/mailborder/2fa.key' -r -F
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand copy" -l force -d 'Replace the accounts of a target that has some (its audit trail is kept)'
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand copy" -l json -d 'Print one JSON document on stdout, on success and on failure'
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand copy" -s q -l quiet -d 'Print only the essential result (errors still go to stderr)'
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand copy" -s h -l help -d 'Print help'
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand backup" -l db -d 'The store: an SQLite file, or mariadb://USER@HOST[:PORT]/DB (or mariadb://USER@localhost/DB?socket=PATH; ?password_file=PATH&tls_ca=PATH); no password in the URL. Else [store] of the config file, else /var/lib/mailborder/2fa.db' -r
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand backup" -l config -d 'Config file with [store] and [key] (default /etc/mailborder/2fa.toml, read if it exists)' -r -F
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand backup" -l key-file -d 'Key that seals the TOTP secrets (created with the first enrollment, mode 0400); else [key] file of the config file, else /etc/mailborder/2fa.key' -r -F
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand backup" -l json -d 'Print one JSON document on stdout, on success and on failure'
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand backup" -s q -l quiet -d 'Print only the essential result (errors still go to stderr)'
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand backup" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand rekey" -l db -d 'The store: an SQLite file, or mariadb://USER@HOST[:PORT]/DB (or mariadb://USER@localhost/DB?socket=PATH; ?password_file=PATH&tls_ca=PATH); no password in the URL. Else [store] of the config file, else /var/lib/mailborder/2fa.db' -r
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand rekey" -l config -d 'Config file with [store] and [key] (default /etc/mailborder/2fa.toml, read if it exists)' -r -F
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand rekey" -l key-file -d 'Key that seals the TOTP secrets (created with the first enrollment, mode 0400); else [key] file of the config file, else /etc/mailborder/2fa.key' -r -F
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand rekey" -l finish -d 'Retire the old key: check every secret opens with the new one, then remove KEY.old'
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand rekey" -l prepare -d 'Only write the next key as KEY.new (to copy it to every node first)'
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand rekey" -l json -d 'Print one JSON document on stdout, on success and on failure'
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand rekey" -s q -l quiet -d 'Print only the essential result (errors still go to stderr)'
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand rekey" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand seal-plaintext" -l db -d 'The store: an SQLite file, or mariadb://USER@HOST[:PORT]/DB (or mariadb://USER@localhost/DB?socket=PATH; ?password_file=PATH&tls_ca=PATH); no password in the URL. Else [store] of the config file, else /var/lib/mailborder/2fa.db' -r
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand seal-plaintext" -l config -d 'Config file with [store] and [key] (default /etc/mailborder/2fa.toml, read if it exists)' -r -F
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand seal-plaintext" -l key-file -d 'Key that seals the TOTP secrets (created with the first enrollment, mode 0400); else [key] file of the config file, else /etc/mailborder/2fa.key' -r -F
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand seal-plaintext" -l json -d 'Print one JSON document on stdout, on success and on failure'
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand seal-plaintext" -s q -l quiet -d 'Print only the essential result (errors still go to stderr)'
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand seal-plaintext" -s h -l help -d 'Print help'
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand help; and not __fish_seen_subcommand_from init check copy backup rekey seal-plaintext help" -f -a "init" -d 'Create a new, empty store (refuses if one exists)'
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand help; and not __fish_seen_subcommand_from init check copy backup rekey seal-plaintext help" -f -a "check" -d 'Check that the store can be trusted (exit 10 if not)'
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand help; and not __fish_seen_subcommand_from init check copy backup rekey seal-plaintext help" -f -a "copy" -d 'Copy every row of this store into another (SQLite to MariaDB and back)'
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand help; and not __fish_seen_subcommand_from init check copy backup rekey seal-plaintext help" -f -a "backup" -d 'Write a consistent, checked copy of an SQLite store to a new file (not the key)'
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand help; and not __fish_seen_subcommand_from init check copy backup rekey seal-plaintext help" -f -a "rekey" -d 'Change the key that seals the secrets (the old key is kept until --finish)'
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand help; and not __fish_seen_subcommand_from init check copy backup rekey seal-plaintext help" -f -a "seal-plaintext" -d 'Seal the plaintext secrets of a version 1 database, once'
complete -c mb-2fa-store -n "__fish_mb_2fa_store_using_subcommand help; and not __fish_seen_subcommand_from init check copy backup rekey seal-plaintext help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
