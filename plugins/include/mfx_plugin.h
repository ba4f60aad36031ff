/*
 * mfx_plugin.h: the C ABI of mfx `dynamic_library` plugins (shared objects loaded in process).
 *
 * A plugin exports the seven functions below with C linkage. The host loads a verified private
 * copy of the .so (RTLD_NOW | RTLD_LOCAL), checks that every symbol exists and that
 * mfx_plugin_abi_version() == MFX_PLUGIN_ABI_VERSION, then drives one or more instances:
 *
 *   h = mfx_plugin_init(config, err, len)      -> NULL on failure, reason in err
 *   mfx_plugin_configure(h, config, err, len)  -> as often as the manifest's config changes
 *   mfx_plugin_process(h, frames, n, ch, rate) -> per audio block (the real-time path)
 *   mfx_plugin_health(h)                       -> periodically
 *   mfx_plugin_shutdown(h)                     -> once; h is invalid afterwards
 *
 * Threading: the host never calls into one handle from two threads at once (it serialises
 * configure, process, health and shutdown per handle), so a plugin needs no locks of its own
 * for per-handle state. Different handles may be used concurrently: keep no mutable globals.
 * process() runs on the audio thread: no allocation, no locks, no I/O there.
 *
 * Configuration arrives as a JSON object (UTF-8, NUL-terminated): the manifest's spec.config.
 * Error messages are written NUL-terminated into err (at most err_len bytes, truncated).
 */
#ifndef MFX_PLUGIN_H
#define MFX_PLUGIN_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MFX_PLUGIN_ABI_VERSION 1

/* Return codes of configure, process and health. */
#define MFX_OK 0
#define MFX_ERR_INVALID_ARGUMENT -1 /* bad pointer, count, channel count or rate */
#define MFX_ERR_UNSUPPORTED -2      /* e.g. more channels than the plugin handles */
#define MFX_ERR_CONFIG -3           /* configure: the config was rejected (see err) */
#define MFX_ERR_UNHEALTHY 1         /* health: the instance is not working correctly */

#if defined(__GNUC__)
#define MFX_EXPORT __attribute__((visibility("default")))
#else
#define MFX_EXPORT
#endif

/* Static JSON: {"name": "...", "version": "x.y.z", "abi": MFX_PLUGIN_ABI_VERSION}. */
MFX_EXPORT const char *mfx_plugin_info(void);

/* MFX_PLUGIN_ABI_VERSION as the plugin was compiled against. */
MFX_EXPORT int mfx_plugin_abi_version(void);

/* A new instance configured with config_json, or NULL with the reason in err. */
MFX_EXPORT void *mfx_plugin_init(const char *config_json, char *err, size_t err_len);

/* Replace the configuration of a running instance; MFX_OK or MFX_ERR_CONFIG (reason in err).
 * On error the previous configuration stays in effect. */
MFX_EXPORT int mfx_plugin_configure(void *handle, const char *config_json, char *err, size_t err_len);

/* Process frame_count interleaved float32 frames of `channels` channels in place. */
MFX_EXPORT int mfx_plugin_process(void *handle, float *frames, size_t frame_count, int channels,
                                  int sample_rate);

/* MFX_OK when healthy, MFX_ERR_UNHEALTHY (or another non-zero code) when not. */
MFX_EXPORT int mfx_plugin_health(void *handle);

/* Release the instance; the handle must not be used afterwards. */
MFX_EXPORT void mfx_plugin_shutdown(void *handle);

#ifdef __cplusplus
}
#endif

#endif /* MFX_PLUGIN_H */
