# Sourced by scripts/run and scripts/test: the Debian packages each needs, and how they get installed.

# What the tray itself needs on a bare Debian/Ubuntu: Qt's xcb platform libraries, EGL/GL, fonts, D-Bus.
TRAY_PACKAGES=(libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxkbcommon-x11-0 libxcb-image0
  libxcb-render-util0 libxcb-xinerama0 libxcb-shape0 libxcb-randr0 libxcb-xkb1 libegl1 libgl1
  libfontconfig1 libdbus-1-3)

# What the tests drive besides: an X server, a tray host, real key presses, a private session bus and
# gsettings, process tools, and the validators and shells the desktop-integration tests run.
TEST_PACKAGES=("${TRAY_PACKAGES[@]}" xvfb trayer xdotool x11-utils util-linux procps dbus-daemon
  libglib2.0-bin git desktop-file-utils appstream systemd fish zsh bash-completion man-db)

# install_debian_packages PKG…: as root with apt-get, installs the missing ones; otherwise says which
# are missing (the tray may still run if the system has them under other names).
install_debian_packages() {
  command -v dpkg-query >/dev/null || return 0
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing system packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "note: missing Debian packages (install them as root): ${missing[*]}" >&2
  fi
}
