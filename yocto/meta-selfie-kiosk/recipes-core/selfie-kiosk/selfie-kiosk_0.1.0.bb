SUMMARY = "Offline-first backend daemon for an autonomous selfie kiosk"
DESCRIPTION = "selfie-kiosk stores the kiosk's captures locally (SQLite catalog, \
               durable outbox), serves them to the touchscreen app on loopback, syncs \
               them to PostgreSQL and a WebDAV server when the network allows, sends \
               download links by SMS through OVH and applies GDPR retention. A udev rule \
               writes diagnostics onto a USB stick labelled KIOSKDIAG."
HOMEPAGE = "https://git.example.com/selfie-kiosk/selfie-kiosk"
BUGTRACKER = "https://git.example.com/selfie-kiosk/selfie-kiosk/issues"
SECTION = "net"
LICENSE = "MIT"
CVE_PRODUCT = "selfie-kiosk"
LIC_FILES_CHKSUM = "file://LICENSE;md5=1026d1b6fea16f0926ce270c302e309f"

# Placeholders: point SRC_URI at the project's git server and SRCREV at the commit to build
# (a release tag's commit). The crates come from selfie-kiosk-crates.inc, generated from
# that commit's Cargo.lock by tools/gen-yocto-crates.py (or bitbake -c update_crates
# selfie-kiosk); both must match or do_compile fails (cargo --frozen).
SRC_URI = "git://git.example.com/selfie-kiosk/selfie-kiosk.git;protocol=https;branch=main;destsuffix=git"
SRCREV = "0000000000000000000000000000000000000000"

require ${BPN}-crates.inc

S = "${UNPACKDIR}/git"

inherit cargo cargo-update-recipe-crates systemd useradd

# Size-optimised build, the same settings as [profile.kiosk] in Cargo.toml but applied to
# the release profile the cargo class builds; no strip there: Yocto strips the binary and
# splits its debug information into selfie-kiosk-dbg itself.
export CARGO_PROFILE_RELEASE_OPT_LEVEL = "s"
export CARGO_PROFILE_RELEASE_LTO = "fat"
export CARGO_PROFILE_RELEASE_CODEGEN_UNITS = "1"
export CARGO_PROFILE_RELEASE_PANIC = "abort"

SYSTEMD_SERVICE:${PN} = "selfie-kiosk.service"
SYSTEMD_AUTO_ENABLE:${PN} = "enable"

# The image's systemd-sysusers creates the user from the installed sysusers.d file at
# boot; useradd creates it at build time too, so the files installed below can be owned
# by it in the root file system.
USERADD_PACKAGES = "${PN}"
GROUPADD_PARAM:${PN} = "--system selfie-kiosk"
USERADD_PARAM:${PN} = "--system --gid selfie-kiosk --home-dir ${localstatedir}/lib/selfie-kiosk \
                       --no-create-home --shell /sbin/nologin --comment 'Selfie kiosk daemon' selfie-kiosk"

do_install:append() {
    install -d ${D}${systemd_system_unitdir}
    install -m 0644 ${S}/assets/systemd/selfie-kiosk.service ${D}${systemd_system_unitdir}/
    install -m 0644 ${S}/assets/systemd/selfie-kiosk-diag@.service ${D}${systemd_system_unitdir}/

    install -d ${D}${nonarch_libdir}/sysusers.d ${D}${nonarch_libdir}/tmpfiles.d
    install -m 0644 ${S}/assets/systemd/selfie-kiosk.sysusers ${D}${nonarch_libdir}/sysusers.d/selfie-kiosk.conf
    install -m 0644 ${S}/assets/systemd/selfie-kiosk.tmpfiles ${D}${nonarch_libdir}/tmpfiles.d/selfie-kiosk.conf

    install -d ${D}${nonarch_base_libdir}/udev/rules.d
    install -m 0644 ${S}/assets/udev/90-selfie-kiosk-diag.rules ${D}${nonarch_base_libdir}/udev/rules.d/

    install -d ${D}${libexecdir}/selfie-kiosk
    install -m 0755 ${S}/assets/usb/selfie-kiosk-usb-diag ${D}${libexecdir}/selfie-kiosk/

    install -d -m 0750 -o root -g selfie-kiosk ${D}${sysconfdir}/selfie-kiosk
    install -m 0644 ${S}/assets/selfie-kiosk.env.example ${D}${sysconfdir}/selfie-kiosk/selfie-kiosk.env.example

    install -d -m 0750 -o selfie-kiosk -g selfie-kiosk ${D}${localstatedir}/lib/selfie-kiosk
}

FILES:${PN} += "\
    ${systemd_system_unitdir}/selfie-kiosk-diag@.service \
    ${nonarch_libdir}/sysusers.d/selfie-kiosk.conf \
    ${nonarch_libdir}/tmpfiles.d/selfie-kiosk.conf \
    ${nonarch_base_libdir}/udev/rules.d/90-selfie-kiosk-diag.rules \
    ${libexecdir}/selfie-kiosk \
    ${localstatedir}/lib/selfie-kiosk \
"

# The USB diagnostics script: mount/umount, setpriv (drops to the selfie-kiosk user),
# mktemp, logger.
RDEPENDS:${PN} += "util-linux-mount util-linux-setpriv util-linux-umount"
