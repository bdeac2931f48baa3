#!/usr/bin/env bash
# The system programs the test suite and the bench drive for real: MariaDB (the metadata tests),
# OpenSSH (the SFTP storage nodes), Ceph's monitor, OSD and RADOS Gateway (the S3 storage nodes)
# Chromium (the browser end-to-end suite), the WebDAV clients rclone and litmus, the download
# manager aria2c (share links), the Nextcloud sync client nextcloudcmd and the directory server
# slapd with its ldap-utils (LDAP sign-in), and Prometheus with promtool (the /metrics endpoint
# scraped and parsed by the real thing). Source this file and
# call dfs_ensure_system_deps, or run it directly.
# ffmpeg and pdftoppm (poppler-utils) make the thumbnails of videos and PDFs; a server without
# them runs, and those files get no thumbnail.

# Prints the Debian packages whose programs are missing, one per line. The program, not dpkg's
# record, is what the suites need; mariadbd and sshd live in sbin, off a normal user's PATH.
dfs_missing_system_packages() {
  local pair pkg program
  for pair in mariadb-server:mariadbd mariadb-server:mariadb-install-db openssh-server:sshd \
    openssh-client:ssh openssh-client:sftp chromium:chromium ceph-mon:ceph-mon ceph-mon:monmaptool \
    ceph-osd:ceph-osd radosgw:radosgw ceph-common:radosgw-admin ceph-common:ceph ceph-common:ceph-authtool \
    ffmpeg:ffmpeg poppler-utils:pdftoppm \
    nginx:nginx rclone:rclone litmus:litmus aria2:aria2c nextcloud-desktop-cmd:nextcloudcmd \
    slapd:slapd slapd:slapadd ldap-utils:ldapsearch prometheus:prometheus prometheus:promtool; do
    pkg=${pair%%:*}
    program=${pair#*:}
    if command -v "$program" >/dev/null 2>&1 || [[ -x /usr/sbin/$program || -x /usr/bin/$program ]]; then
      continue
    fi
    echo "$pkg"
  done | sort -u
  # A font, not a program: the zh-CN interface is tested with the CJK fonts its users have.
  fc-list 'Noto Sans CJK SC' family 2>/dev/null | grep -q . || echo fonts-noto-cjk
}

dfs_ensure_system_deps() {
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo=(sudo)
    fi
  fi

  local missing
  mapfile -t missing < <(dfs_missing_system_packages)
  if ((${#missing[@]} > 0)); then
    if [[ $(id -u) -ne 0 && ${#sudo[@]} -eq 0 ]]; then
      echo "dfs: missing system packages: ${missing[*]} — install them as root (apt-get install ${missing[*]})" >&2
      return 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
      echo "dfs: missing system packages: ${missing[*]}, and no apt-get to install them with" >&2
      return 1
    fi
    echo "dfs: installing system packages: ${missing[*]}"
    # Only the programs are wanted: a policy-rc.d answering 101 stops Debian's maintainer scripts
    # from starting a system-wide MariaDB and sshd that would hold ports 3306 and 22 forever.
    local policy=/usr/sbin/policy-rc.d placed_policy=0
    if [[ ! -e $policy ]]; then
      printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
      "${sudo[@]}" chmod 755 "$policy"
      placed_policy=1
    fi
    local status=0
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q || status=$?
    if ((status == 0)); then
      "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${missing[@]}" || status=$?
    fi
    if ((placed_policy)); then "${sudo[@]}" rm -f "$policy"; fi
    if ((status != 0)); then
      echo "dfs: apt-get failed (exit $status) installing: ${missing[*]}" >&2
      return "$status"
    fi
  fi

  # sshd refuses to start without its privilege-separation directory, which lives on a tmpfs
  # that a fresh boot or container does not have.
  if [[ ! -d /run/sshd ]]; then
    if [[ $(id -u) -eq 0 || ${#sudo[@]} -gt 0 ]]; then
      "${sudo[@]}" mkdir -p /run/sshd
      "${sudo[@]}" chmod 755 /run/sshd
    else
      echo "dfs: warning: /run/sshd is missing and cannot be created without root" >&2
    fi
  fi
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  set -euo pipefail
  dfs_ensure_system_deps
fi
