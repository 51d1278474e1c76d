#!/bin/sh
# Install the Yiwang edge agent on a Raspberry Pi / Debian gateway, without a .deb. Idempotent: run it
# again to install another version or to pick up a new gateway file; run as before it changes nothing.
#
#   sudo sh edge/install/install-edge.sh --gateway-file gw-03.yaml --password-file gw-03.password
#   sudo sh edge/install/install-edge.sh ./yiwang-0.1.0-py3-none-any.whl   # a wheel instead of PyPI
#   sudo PIP_OPTS="--no-index --find-links /media/usb/wheels" sh edge/install/install-edge.sh  # offline
#
# It creates the user `yiwang` (groups dialout, video); the agent as a venv in
# /opt/yiwang/versions/<version> with `yiwang[edge]`, and /opt/yiwang/current pointing at it (the layout
# of edge/upgrade/slots.py, which `yiwang edge upgrade` continues); /etc/yiwang/ (0750: the gateway
# file, the MQTT password, sensor types, the release settings); /var/lib/yiwang/ (the spool); installs
# and enables the systemd units, and ends with `yiwang edge doctor`. An older install's single venv
# (/opt/yiwang/venv) is replaced by a link to `current` once the new version runs; /etc and the spool
# are never moved. Every path can be moved with the variables below; ROOT stages the whole tree under a
# directory (then no user is created and systemd is not called), which is how
# tests/edge/test_install.py runs it.
set -eu

ROOT=${ROOT:-}
PREFIX=${PREFIX:-/opt/yiwang}
CONFIG_DIR=${CONFIG_DIR:-/etc/yiwang}
DATA_DIR=${DATA_DIR:-/var/lib/yiwang}
UNIT_DIR=${UNIT_DIR:-/etc/systemd/system}
YIWANG_USER=${YIWANG_USER:-yiwang}
PYTHON=${PYTHON:-python3}
PIP_OPTS=${PIP_OPTS:-}
SYSTEMCTL=${SYSTEMCTL:-systemctl}

HERE=$(cd "$(dirname "$0")" && pwd)
UNIT_SOURCE=${UNIT_SOURCE:-$HERE/../systemd/yiwang-edge.service}
UPGRADE_UNIT_SOURCE=${UPGRADE_UNIT_SOURCE:-$HERE/../systemd/yiwang-edge-upgrade@.service}
POLKIT_RULE_SOURCE=${POLKIT_RULE_SOURCE:-$HERE/../polkit/50-yiwang-edge-upgrade.rules}
POLKIT_DIR=${POLKIT_DIR:-/etc/polkit-1/rules.d}

usage() {
    cat <<EOF
usage: install-edge.sh [options] [PACKAGE]

PACKAGE is what pip installs: a wheel, a source directory, or a requirement
(default: 'yiwang[edge]' from the package index, or from a wheelhouse with
PIP_OPTS="--no-index --find-links DIR"). It goes into $PREFIX/versions/<version>
and $PREFIX/current points at it. Without PACKAGE an installed current is kept.

options:
  --gateway-file FILE     the gateway file (from \`yiwang gateway add\` on the server); installed as
                          $CONFIG_DIR/gateway.yaml (an existing, different one is kept: the new one
                          goes beside it as gateway.yaml.new)
  --password-file FILE    the gateway's MQTT password; installed as $CONFIG_DIR/mqtt.password (0600)
  --sensor-types DIR      sensor-type profiles (default: PACKAGE/config/sensor-types for a source dir)
  --release-server URL    where \`yiwang edge upgrade\` downloads releases
                          (https://<server>/api/v1/releases); written to $CONFIG_DIR/upgrade.env
  --release-token-file F  an API token with the releases scope; installed as release.token (0600)
  --release-key FILE      the release key's public half; installed as release-key.pub
  --release-ca FILE       CA of the release server's certificate (default: the system's roots)
  --system-site-packages  let the venv see system packages (e.g. Debian's python3-opencv for cameras)
  --editable              pip install -e PACKAGE (a source checkout you keep)
  --no-systemd            do not install or enable the systemd units (containers, staging)
  --no-user               do not create the user or change ownership
  --no-doctor             do not run \`yiwang edge doctor\` at the end
  -h, --help              this text

environment: ROOT PREFIX CONFIG_DIR DATA_DIR UNIT_DIR POLKIT_DIR YIWANG_USER PYTHON PIP_OPTS SYSTEMCTL
EOF
}

say() { printf 'install-edge: %s\n' "$*"; }
die() { printf 'install-edge: %s\n' "$*" >&2; exit 2; }

package=
gateway_file=
password_file=
sensor_types=
release_server=
release_token=
release_key=
release_ca=
site_packages=
editable=
systemd=yes
manage_user=yes
doctor=yes
while [ $# -gt 0 ]; do
    case $1 in
        --gateway-file) [ $# -ge 2 ] || die "$1 needs a file"; gateway_file=$2; shift ;;
        --password-file) [ $# -ge 2 ] || die "$1 needs a file"; password_file=$2; shift ;;
        --sensor-types) [ $# -ge 2 ] || die "$1 needs a directory"; sensor_types=$2; shift ;;
        --release-server) [ $# -ge 2 ] || die "$1 needs a URL"; release_server=$2; shift ;;
        --release-token-file) [ $# -ge 2 ] || die "$1 needs a file"; release_token=$2; shift ;;
        --release-key) [ $# -ge 2 ] || die "$1 needs a file"; release_key=$2; shift ;;
        --release-ca) [ $# -ge 2 ] || die "$1 needs a file"; release_ca=$2; shift ;;
        --system-site-packages) site_packages=--system-site-packages ;;
        --editable) editable=-e ;;
        --no-systemd) systemd=no ;;
        --no-user) manage_user=no ;;
        --no-doctor) doctor=no ;;
        -h | --help) usage; exit 0 ;;
        -*) usage >&2; die "unknown option $1" ;;
        *) [ -z "$package" ] || die "one PACKAGE only (got $package and $1)"; package=$1 ;;
    esac
    shift
done

[ -z "$gateway_file" ] || [ -f "$gateway_file" ] || die "gateway file $gateway_file not found"
[ -z "$password_file" ] || [ -f "$password_file" ] || die "password file $password_file not found"
[ -z "$sensor_types" ] || [ -d "$sensor_types" ] || die "sensor types $sensor_types is not a directory"
[ -z "$release_token" ] || [ -f "$release_token" ] || die "release token file $release_token not found"
[ -z "$release_key" ] || [ -f "$release_key" ] || die "release key $release_key not found"
[ -z "$release_ca" ] || [ -f "$release_ca" ] || die "release CA $release_ca not found"
case $release_server in
    '' | https://*) ;;
    *) die "--release-server must be an https:// URL (got $release_server)" ;;
esac
if [ -n "$release_server" ] && { [ -z "$release_token" ] || [ -z "$release_key" ]; }; then
    die "--release-server needs --release-token-file and --release-key as well"
fi
[ -f "$UNIT_SOURCE" ] || die "systemd unit $UNIT_SOURCE not found"
[ -f "$UPGRADE_UNIT_SOURCE" ] || die "systemd unit $UPGRADE_UNIT_SOURCE not found"
if [ -n "$editable" ] && [ ! -d "${package:-}" ]; then
    die "--editable needs a source directory as PACKAGE"
fi
case $package in
    *.whl) [ -f "$package" ] || die "wheel $package not found" ;;
esac

# A staged tree (ROOT) or an unprivileged run cannot own files as another user.
if [ -n "$ROOT" ] || [ "$(id -u)" -ne 0 ]; then
    [ "$manage_user" = no ] || say "not root or ROOT set: no user created, files stay owned by $(id -un)"
    manage_user=no
fi

"$PYTHON" -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
    || die "$PYTHON must be Python 3.11 or newer with venv (sudo apt install python3-venv)"

# The names of edge/upgrade/slots.py: versions/<version>/ (a venv, .installed written last) and the
# links current and previous, each holding the relative target versions/<version>.
prefix=$ROOT$PREFIX
versions=$prefix/versions
current=$prefix/current
previous=$prefix/previous
legacy_venv=$prefix/venv
etc=$ROOT$CONFIG_DIR
var=$ROOT$DATA_DIR
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

link_version() { # the version a link points at; nothing when it is missing or not versions/<version>
    target=$(readlink "$1" 2>/dev/null) || return 0
    case $target in
        versions/*/* | versions/) ;;
        versions/*) printf '%s\n' "${target#versions/}" ;;
    esac
}
bootable() { [ -n "$1" ] && [ -f "$versions/$1/.installed" ] && [ -x "$versions/$1/bin/yiwang" ]; }
# As Slots.set_link: a temporary link renamed over the old one, then the directory synced, so a power
# cut leaves the old or the new link, never none.
set_link() { # link, version
    tmp=$prefix/.$(basename "$1").tmp
    rm -f "$tmp"
    ln -s "versions/$2" "$tmp"
    mv -T "$tmp" "$1"
    sync "$prefix"
}
safe_version() { # contract/release.py VERSION
    printf '%s\n' "$1" | grep -Eqx '[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}'
}

# --- the service user --------------------------------------------------------------------------------
if [ "$manage_user" = yes ]; then
    if ! getent passwd "$YIWANG_USER" >/dev/null; then
        useradd --system --user-group --home-dir "$DATA_DIR" --no-create-home \
            --shell /usr/sbin/nologin "$YIWANG_USER"
        say "created user $YIWANG_USER"
    fi
    for group in dialout video; do
        if getent group "$group" >/dev/null; then
            usermod -a -G "$group" "$YIWANG_USER"
        else
            say "no group $group on this system: skipped"
        fi
    done
fi

# --- the version to install ---------------------------------------------------------------------------
running=$(link_version "$current")
version=
if [ -z "$package" ] && bootable "$running"; then
    # As pip's "requirement already satisfied": another version is installed by naming it.
    version=$running
    say "current is yiwang $version; give a wheel or requirement to install another version"
elif [ -z "$package" ] || { [ ! -d "$package" ] && [ ! -f "$package" ]; }; then
    # A requirement: pip picks the release (index or wheelhouse); it is fetched once, installed by file.
    requirement=${package:-yiwang[edge]}
    "$PYTHON" -m venv "$work/pip" || die "could not create a venv with pip (sudo apt install python3-venv)"
    # shellcheck disable=SC2086  # PIP_OPTS is a list of words on purpose
    "$work/pip/bin/python" -m pip download --disable-pip-version-check --quiet --no-deps $PIP_OPTS \
        --dest "$work/fetched" "$requirement" || die "pip could not fetch $requirement (see above)"
    set -- "$work/fetched"/yiwang-*
    { [ $# -eq 1 ] && [ -f "$1" ]; } || die "pip fetched no yiwang package for $requirement"
    package=$1
fi
if [ -z "$version" ]; then
    if [ -d "$package" ]; then
        version=$("$PYTHON" - "$package/pyproject.toml" <<'EOF'
import sys, tomllib
try:
    with open(sys.argv[1], "rb") as file:
        print(tomllib.load(file)["project"]["version"])
except (OSError, KeyError, tomllib.TOMLDecodeError) as err:
    sys.exit(f"install-edge: no static [project] version in {sys.argv[1]}: {err}")
EOF
        ) || die "cannot tell the version of $package: build a wheel (pip wheel $package) and give that"
    else
        name=$(basename "$package")
        case $name in
            yiwang-*.whl) version=$(printf '%s\n' "$name" | cut -d- -f2) ;;
            yiwang-*.tar.gz) version=${name#yiwang-}; version=${version%.tar.gz} ;;
            *) die "$package is not a yiwang wheel (yiwang-<version>-*.whl) or source archive" ;;
        esac
    fi
    safe_version "$version" || die "$package: '$version' is not a version"
    requirement="$(cd "$(dirname "$package")" && pwd)/$(basename "$package")[edge]"
fi

# --- the venv of that version -------------------------------------------------------------------------
slot=$versions/$version
if bootable "$version"; then
    [ "$version" = "$running" ] || say "yiwang $version already installed in $slot"
else
    # A leftover without .installed was cut mid-install: a venv cannot be repaired in place.
    rm -rf "$slot"
    mkdir -p "$versions"
    # shellcheck disable=SC2086  # site_packages is one flag or nothing
    "$PYTHON" -m venv $site_packages "$slot"
    say "created venv $slot"
    # shellcheck disable=SC2086  # PIP_OPTS and editable are lists of words on purpose
    "$slot/bin/python" -m pip install --disable-pip-version-check --quiet $PIP_OPTS $editable \
        "$requirement" || { rm -rf "$slot"; die "pip could not install $requirement (see above)"; }
    # The venv's own yiwang, not one a PYTHONPATH would put first.
    got=$(env -u PYTHONPATH "$slot/bin/python" -c \
        'import importlib.metadata as m; print(m.version("yiwang"))' 2>/dev/null) || got=
    if [ "$got" != "$version" ] || [ ! -x "$slot/bin/yiwang" ]; then
        rm -rf "$slot"
        die "$requirement installed yiwang '${got:-nothing}', not $version with its yiwang command"
    fi
    printf '%s\n' "$version" >"$slot/.installed"
    sync "$slot/.installed" "$slot"
    say "installed $requirement into $slot"
fi
if [ "$running" != "$version" ]; then
    # The version that ran stays the one to go back to, as after `yiwang edge upgrade`.
    if bootable "$running"; then
        set_link "$previous" "$running"
    fi
    set_link "$current" "$version"
    say "current -> versions/$version${running:+ (previous: $running)}"
fi

# --- /etc/yiwang --------------------------------------------------------------------------------------
install -d -m 0750 "$etc"
install_conf() { # source, target, mode: an existing, different target is kept, the new file goes beside
    if [ -f "$2" ] && ! cmp -s "$1" "$2"; then
        install -m "$3" "$1" "$2.new"
        say "kept $2; the new one is $2.new (compare, then move it over)"
    else
        install -m "$3" "$1" "$2"
        say "installed $2"
    fi
}
if [ -n "$gateway_file" ]; then
    # The provisioning default `config_dir: config` is relative to the service's working directory;
    # on the gateway the sensor types live in the config directory.
    sed "s|^config_dir: config\$|config_dir: $CONFIG_DIR|" "$gateway_file" >"$work/gateway.yaml"
    install_conf "$work/gateway.yaml" "$etc/gateway.yaml" 0640
fi
[ -z "$password_file" ] || install_conf "$password_file" "$etc/mqtt.password" 0600
if [ -z "$sensor_types" ] && [ -d "${package:-/nonexistent}/config/sensor-types" ]; then
    sensor_types=$package/config/sensor-types
fi
if [ -n "$sensor_types" ]; then
    install -d -m 0750 "$etc/sensor-types"
    cp -R "$sensor_types/." "$etc/sensor-types/"
    say "installed sensor types into $etc/sensor-types"
elif [ ! -d "$etc/sensor-types" ]; then
    say "no sensor types yet: copy config/sensor-types of the release into $etc/sensor-types"
fi

# What yiwang-edge-upgrade@.service hands to `yiwang edge upgrade`. The upgrade runs as root: the token
# stays root's (0600), out of reach of the agent, which never downloads.
if [ -n "$release_server" ]; then
    install_conf "$release_token" "$etc/release.token" 0600
    install_conf "$release_key" "$etc/release-key.pub" 0640
    ca=/etc/ssl/certs/ca-certificates.crt
    if [ -n "$release_ca" ]; then
        install_conf "$release_ca" "$etc/release-ca.pem" 0640
        ca=$CONFIG_DIR/release-ca.pem
    fi
    # The health check reads the agent's own /metrics, where the gateway file has it served.
    metrics_url=$("$current/bin/python" - "$etc/gateway.yaml" <<'EOF'
import sys, yaml
try:
    with open(sys.argv[1], encoding="utf-8") as file:
        metrics = (yaml.safe_load(file) or {}).get("metrics") or {}
except OSError:
    metrics = {}
port = metrics.get("port", 9108)
host = metrics.get("host") or "127.0.0.1"
host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
print("" if port is None else f"http://{host}:{port}/metrics")
EOF
    ) || metrics_url=
    if [ -z "$metrics_url" ]; then
        say "metrics are off in the gateway file: an upgrade cannot see the new version healthy"
        metrics_url=http://127.0.0.1:9108/metrics
    fi
    cat >"$work/upgrade.env" <<EOF
# Read by yiwang-edge-upgrade@.service (systemctl start yiwang-edge-upgrade@<version>).
YIWANG_RELEASE_SERVER=$release_server
YIWANG_RELEASE_CA=$ca
YIWANG_METRICS_URL=$metrics_url
EOF
    install_conf "$work/upgrade.env" "$etc/upgrade.env" 0640
elif [ ! -f "$etc/upgrade.env" ]; then
    say "no release server yet: for upgrades run this again with --release-server URL"
    say "--release-token-file FILE --release-key FILE"
fi

# --- /var/lib/yiwang ----------------------------------------------------------------------------------
install -d -m 0750 "$var" "$var/edge"

if [ "$manage_user" = yes ]; then
    chown -R "root:$YIWANG_USER" "$etc"
    chmod -R g-w,o-rwx "$etc"
    [ ! -f "$etc/mqtt.password" ] || chown "$YIWANG_USER:$YIWANG_USER" "$etc/mqtt.password"
    chown -R "$YIWANG_USER:$YIWANG_USER" "$var"
fi

# --- systemd ------------------------------------------------------------------------------------------
install_unit() { # source: installed under UNIT_DIR with every path and the user moved
    target=$ROOT$UNIT_DIR/$(basename "$1")
    sed -e "s|/opt/yiwang|$PREFIX|g" -e "s|/etc/yiwang/|$CONFIG_DIR/|g" \
        -e "s|/var/lib/yiwang|$DATA_DIR|g" -e "s|^User=yiwang\$|User=$YIWANG_USER|" \
        -e "s|^Group=yiwang\$|Group=$YIWANG_USER|" "$1" >"$target.tmp"
    chmod 0644 "$target.tmp"
    mv "$target.tmp" "$target"
    say "installed $target"
}
if [ "$systemd" = yes ]; then
    install -d "$ROOT$UNIT_DIR"
    install_unit "$UNIT_SOURCE"
    install_unit "$UPGRADE_UNIT_SOURCE"
    # The agent starts its own upgrade unit when told a desired version: polkit allows exactly that.
    install -d "$ROOT$POLKIT_DIR"
    sed "s|subject.user === \"yiwang\"|subject.user === \"$YIWANG_USER\"|" "$POLKIT_RULE_SOURCE" \
        >"$ROOT$POLKIT_DIR/50-yiwang-edge-upgrade.rules"
    chmod 0644 "$ROOT$POLKIT_DIR/50-yiwang-edge-upgrade.rules"
    say "installed $ROOT$POLKIT_DIR/50-yiwang-edge-upgrade.rules"
    if [ -n "$ROOT" ]; then
        say "ROOT set: enable it on the target (systemctl enable --now yiwang-edge)"
    elif command -v "$SYSTEMCTL" >/dev/null; then
        "$SYSTEMCTL" daemon-reload
        "$SYSTEMCTL" enable yiwang-edge.service
        if [ -f "$etc/gateway.yaml" ]; then
            "$SYSTEMCTL" restart yiwang-edge.service
            say "yiwang-edge (re)started: journalctl -u yiwang-edge -f"
        else
            say "enabled; start it once $etc/gateway.yaml is in place: systemctl start yiwang-edge"
        fi
    else
        say "no systemctl here: the units are installed but not enabled"
    fi
fi

# --- an older single-venv install ---------------------------------------------------------------------
# Retired only now that `current` holds a working version and the service was restarted on it. The
# link keeps anything still naming PREFIX/venv/bin/yiwang working, on the current version.
rm -rf "$prefix/.venv.retired"
if [ -d "$legacy_venv" ] && [ ! -L "$legacy_venv" ]; then
    mv "$legacy_venv" "$prefix/.venv.retired"
    rm -f "$prefix/.venv.tmp"
    ln -s current "$prefix/.venv.tmp"
    mv -T "$prefix/.venv.tmp" "$legacy_venv"
    rm -rf "$prefix/.venv.retired"
    say "replaced the single venv $legacy_venv by a link to current ($CONFIG_DIR, $DATA_DIR untouched)"
fi

# --- check ---------------------------------------------------------------------------------------------
if [ "$doctor" = yes ]; then
    if [ -f "$etc/gateway.yaml" ]; then
        say "yiwang edge doctor --config $etc/gateway.yaml"
        # As the service user when there is one: its rights on ports, spool and files are what count.
        set -- "$current/bin/yiwang" edge doctor --config "$etc/gateway.yaml"
        if [ "$manage_user" = yes ] && command -v runuser >/dev/null; then
            set -- env YIWANG_EDGE_USER="$YIWANG_USER" runuser -u "$YIWANG_USER" -- "$@"
        fi
        if (cd "$var" && "$@"); then
            say "doctor: all checks passed"
        else
            say "doctor found problems (FAIL above): fix them, then systemctl restart yiwang-edge"
        fi
    else
        say "no gateway file yet: provision one on the server (yiwang gateway add COMMUNITY GATEWAY),"
        say "then run this again with --gateway-file FILE --password-file FILE"
    fi
fi
say "done"
