include $(sort $(wildcard $(BR2_EXTERNAL_SELFIE_KIOSK_PATH)/package/*/*.mk))
