//! Triggers: where a pipeline's messages come from — the message bus, an external MQTT
//! broker, or HTTP POST.
