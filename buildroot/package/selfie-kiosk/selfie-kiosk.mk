################################################################################
#
# selfie-kiosk
#
################################################################################

# Placeholders: the project's git server and the tag (or full commit id) to build. For a
# local checkout during development, put in the build's local.mk:
#   SELFIE_KIOSK_OVERRIDE_SRCDIR = /path/to/selfie-kiosk
SELFIE_KIOSK_VERSION = v0.1.0
SELFIE_KIOSK_SITE = https://git.example.com/selfie-kiosk/selfie-kiosk.git
SELFIE_KIOSK_SITE_METHOD = git
SELFIE_KIOSK_LICENSE = MIT
SELFIE_KIOSK_LICENSE_FILES = LICENSE

# Size-optimised build: the settings of [profile.kiosk] in Cargo.toml applied to the
# release profile the cargo infrastructure builds, without strip (Buildroot strips the
# target files itself, per BR2_STRIP_strip).
SELFIE_KIOSK_CARGO_ENV = \
	CARGO_PROFILE_RELEASE_OPT_LEVEL=s \
	CARGO_PROFILE_RELEASE_LTO=fat \
	CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
	CARGO_PROFILE_RELEASE_PANIC=abort

# The cargo infrastructure builds with --release unless BR2_ENABLE_DEBUG.
SELFIE_KIOSK_PROFILE_DIR = $(if $(BR2_ENABLE_DEBUG),debug,release)

# Install the binary built above (the default `cargo install` would build it a second
# time) and the assets that do not depend on the init system.
define SELFIE_KIOSK_INSTALL_TARGET_CMDS
	$(INSTALL) -D -m 0755 $(@D)/target/$(RUSTC_TARGET_NAME)/$(SELFIE_KIOSK_PROFILE_DIR)/selfie-kiosk \
		$(TARGET_DIR)/usr/bin/selfie-kiosk
	$(INSTALL) -D -m 0644 $(@D)/assets/selfie-kiosk.env.example \
		$(TARGET_DIR)/etc/selfie-kiosk/selfie-kiosk.env.example
endef

define SELFIE_KIOSK_INSTALL_INIT_SYSTEMD
	$(INSTALL) -D -m 0644 $(@D)/assets/systemd/selfie-kiosk.service \
		$(TARGET_DIR)/usr/lib/systemd/system/selfie-kiosk.service
	$(INSTALL) -D -m 0644 $(@D)/assets/systemd/selfie-kiosk-diag@.service \
		$(TARGET_DIR)/usr/lib/systemd/system/selfie-kiosk-diag@.service
	$(INSTALL) -D -m 0644 $(@D)/assets/systemd/selfie-kiosk.sysusers \
		$(TARGET_DIR)/usr/lib/sysusers.d/selfie-kiosk.conf
	$(INSTALL) -D -m 0644 $(@D)/assets/systemd/selfie-kiosk.tmpfiles \
		$(TARGET_DIR)/usr/lib/tmpfiles.d/selfie-kiosk.conf
	$(INSTALL) -D -m 0644 $(@D)/assets/udev/90-selfie-kiosk-diag.rules \
		$(TARGET_DIR)/usr/lib/udev/rules.d/90-selfie-kiosk-diag.rules
	$(INSTALL) -D -m 0755 $(@D)/assets/usb/selfie-kiosk-usb-diag \
		$(TARGET_DIR)/usr/libexec/selfie-kiosk/selfie-kiosk-usb-diag
endef
# selfie-kiosk.service has an [Install] section: Buildroot's `systemctl preset-all`
# enables it in the image.

# The daemon's user (also in sysusers.d, for systems that run systemd-sysusers).
# username uid group gid password home shell groups comment
define SELFIE_KIOSK_USERS
	selfie-kiosk -1 selfie-kiosk -1 * /var/lib/selfie-kiosk - - Selfie kiosk daemon
endef

# name type mode uid gid major minor start inc count
define SELFIE_KIOSK_PERMISSIONS
	/etc/selfie-kiosk d 0750 root selfie-kiosk - - - - -
	/var/lib/selfie-kiosk d 0750 selfie-kiosk selfie-kiosk - - - - -
endef

$(eval $(cargo-package))

# Until a release's tarball hash is recorded in selfie-kiosk.hash (see the comment there),
# do not require one; the LICENSE hash is always checked.
BR_NO_CHECK_HASH_FOR += $(SELFIE_KIOSK_SOURCE)
