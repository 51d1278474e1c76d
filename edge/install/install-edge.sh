#!/bin/sh
# Install the Yiwang edge agent on a Raspberry Pi / Debian gateway, without a .deb. Idempotent: run it
# again to upgrade the package or to pick up a new gateway file.
#
#   sudo sh edge/install/install-edge.sh --gateway-file gw-03.yaml --password-file gw-03.password
#   sudo sh edge/install/install-edge.sh ./yiwang-0.1.0-py3-none-any.whl   # a wheel instead of PyPI
#
# It creates the user `yiwang` (groups dialout, video), a venv in /opt/yiwang/venv with
# `yiwang[edge]`, /etc/yiwang/ (0750: the gateway file, the MQTT password, sensor types),
# /var/lib/yiwang/ (the spool), installs and enables the systemd unit, and ends with `yiwang edge doctor`.
# Every path can be moved with the variables below; ROOT stages the whole tree under a directory
# (then no user is created and systemd is not called), which is how tests/edge/test_install.py runs it.
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

usage() {
    cat <<EOF
usage: install-edge.sh [options] [PACKAGE]

PACKAGE is what pip installs: a wheel, a source directory, or a requirement
(default: 'yiwang[edge]' from the package index).

options:
  --gateway-file FILE     the gateway file (from \`yiwang gateway add\` on the server); installed as
                          $CONFIG_DIR/gateway.yaml (an existing, different one is kept: the new one
                          goes beside it as gateway.yaml.new)
  --password-file FILE    the gateway's MQTT password; installed as $CONFIG_DIR/mqtt.password (0600)
  --sensor-types DIR      sensor-type profiles (default: PACKAGE/config/sensor-types for a source dir)
  --system-site-packages  let the venv see system packages (e.g. Debian's python3-opencv for cameras)
  --editable              pip install -e PACKAGE (a source checkout you keep)
  --no-systemd            do not install or enable the systemd unit (containers, staging)
  --no-user               do not create the user or change ownership
  --no-doctor             do not run \`yiwang edge doctor\` at the end
  -h, --help              this text

environment: ROOT PREFIX CONFIG_DIR DATA_DIR UNIT_DIR YIWANG_USER PYTHON PIP_OPTS SYSTEMCTL
EOF
}

say() { printf 'install-edge: %s\n' "$*"; }
die() { printf 'install-edge: %s\n' "$*" >&2; exit 2; }

package=
gateway_file=
password_file=
sensor_types=
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
[ -f "$UNIT_SOURCE" ] || die "systemd unit $UNIT_SOURCE not found"
if [ -n "$editable" ] && [ ! -d "${package:-}" ]; then
    die "--editable needs a source directory as PACKAGE"
fi

# A staged tree (ROOT) or an unprivileged run cannot own files as another user.
if [ -n "$ROOT" ] || [ "$(id -u)" -ne 0 ]; then
    [ "$manage_user" = no ] || say "not root or ROOT set: no user created, files stay owned by $(id -un)"
    manage_user=no
fi

"$PYTHON" -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
    || die "$PYTHON must be Python 3.11 or newer with venv (sudo apt install python3-venv)"

venv=$ROOT$PREFIX/venv
etc=$ROOT$CONFIG_DIR
var=$ROOT$DATA_DIR

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

# --- the venv and the package -------------------------------------------------------------------------
if [ ! -x "$venv/bin/python" ]; then
    mkdir -p "$(dirname "$venv")"
    # shellcheck disable=SC2086  # site_packages is one flag or nothing
    "$PYTHON" -m venv $site_packages "$venv"
    say "created venv $venv"
fi
if [ -z "$package" ]; then
    requirement='yiwang[edge]'
elif [ -d "$package" ] || [ -f "$package" ]; then
    requirement="$(cd "$(dirname "$package")" && pwd)/$(basename "$package")[edge]"
else
    requirement=$package
fi
# shellcheck disable=SC2086  # PIP_OPTS and editable are lists of words on purpose
"$venv/bin/python" -m pip install --disable-pip-version-check --quiet $PIP_OPTS $editable "$requirement"
say "installed $requirement into $venv"

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
    staged=$(mktemp)
    trap 'rm -f "$staged"' EXIT
    sed "s|^config_dir: config\$|config_dir: $CONFIG_DIR|" "$gateway_file" >"$staged"
    install_conf "$staged" "$etc/gateway.yaml" 0640
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

# --- /var/lib/yiwang ----------------------------------------------------------------------------------
install -d -m 0750 "$var" "$var/edge"

if [ "$manage_user" = yes ]; then
    chown -R "root:$YIWANG_USER" "$etc"
    chmod -R g-w,o-rwx "$etc"
    [ ! -f "$etc/mqtt.password" ] || chown "$YIWANG_USER:$YIWANG_USER" "$etc/mqtt.password"
    chown -R "$YIWANG_USER:$YIWANG_USER" "$var"
fi

# --- systemd ------------------------------------------------------------------------------------------
unit=$ROOT$UNIT_DIR/yiwang-edge.service
if [ "$systemd" = yes ]; then
    install -d "$ROOT$UNIT_DIR"
    sed -e "s|/opt/yiwang/venv|$PREFIX/venv|g" -e "s|/etc/yiwang/|$CONFIG_DIR/|g" \
        -e "s|/var/lib/yiwang|$DATA_DIR|g" -e "s|^User=yiwang\$|User=$YIWANG_USER|" \
        -e "s|^Group=yiwang\$|Group=$YIWANG_USER|" "$UNIT_SOURCE" >"$unit.tmp"
    chmod 0644 "$unit.tmp"
    mv "$unit.tmp" "$unit"
    say "installed $unit"
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
        say "no systemctl here: the unit is installed but not enabled"
    fi
fi

# --- check ---------------------------------------------------------------------------------------------
if [ "$doctor" = yes ]; then
    if [ -f "$etc/gateway.yaml" ]; then
        say "yiwang edge doctor --config $etc/gateway.yaml"
        # As the service user when there is one: its rights on ports, spool and files are what count.
        set -- "$venv/bin/yiwang" edge doctor --config "$etc/gateway.yaml"
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
