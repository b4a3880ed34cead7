//! The PAM ABI: the entry points libpam calls, and the few libpam functions
//! the module calls back, behind safe wrappers. Every `unsafe` of the crate
//! is in this file, one operation per block, each with its SAFETY reason.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::ptr;

use zeroize::Zeroizing;

use crate::Host;

// Return values (security/_pam_types.h).
pub const PAM_SUCCESS: c_int = 0;
pub const PAM_SERVICE_ERR: c_int = 3;
pub const PAM_AUTH_ERR: c_int = 7;
pub const PAM_MAXTRIES: c_int = 11;
pub const PAM_CONV_ERR: c_int = 19;

// Items.
pub const PAM_SERVICE: c_int = 1;
pub const PAM_TTY: c_int = 3;
pub const PAM_RHOST: c_int = 4;
const PAM_CONV: c_int = 5;

// Message styles.
const PAM_PROMPT_ECHO_OFF: c_int = 1;
const PAM_ERROR_MSG: c_int = 3;
const PAM_TEXT_INFO: c_int = 4;

// syslog priorities.
pub const LOG_ERR: c_int = 3;
pub const LOG_NOTICE: c_int = 5;
pub const LOG_DEBUG: c_int = 7;

/// libpam's handle, only ever behind a pointer.
#[repr(C)]
pub struct PamHandle {
    _opaque: [u8; 0],
}

#[repr(C)]
struct PamMessage {
    msg_style: c_int,
    msg: *const c_char,
}

#[repr(C)]
struct PamResponse {
    resp: *mut c_char,
    resp_retcode: c_int,
}

type ConvFn = unsafe extern "C" fn(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata_ptr: *mut c_void,
) -> c_int;

#[repr(C)]
#[derive(Clone, Copy)]
struct PamConv {
    conv: Option<ConvFn>,
    appdata_ptr: *mut c_void,
}

// libpam.so.0 by its runtime name (`-l:libpam.so.0`): libpam0g is part of
// every Debian system, while the `libpam.so` link that `-lpam` looks for
// comes only with libpam0g-dev; so building the module (and the README's
// test command) needs no extra package. The soname recorded is the same.
#[link(name = "libpam.so.0", modifiers = "+verbatim")]
unsafe extern "C" {
    fn pam_get_user(pamh: *mut PamHandle, user: *mut *const c_char, prompt: *const c_char)
    -> c_int;
    fn pam_get_item(pamh: *const PamHandle, item_type: c_int, item: *mut *const c_void) -> c_int;
    fn pam_syslog(pamh: *const PamHandle, priority: c_int, fmt: *const c_char, ...);
}

/// `pam_sm_authenticate`: ask for the code and let the tools decide. A
/// panic is caught here and is `PAM_SERVICE_ERR`: it never unwinds into
/// sshd or sudo.
#[unsafe(no_mangle)]
pub extern "C" fn pam_sm_authenticate(
    pamh: *mut PamHandle,
    _flags: c_int,
    argc: c_int,
    argv: *const *const c_char,
) -> c_int {
    std::panic::catch_unwind(|| {
        if pamh.is_null() {
            return PAM_SERVICE_ERR;
        }
        // SAFETY: libpam passes the argc/argv of the module's line in the
        // service file: argc valid NUL-terminated strings, for this call.
        let args = unsafe { arguments(argc, argv) };
        let pam = Pam { h: pamh };
        crate::authenticate(&pam, &args)
    })
    .unwrap_or(PAM_SERVICE_ERR)
}

/// `pam_sm_setcred`: the module sets no credentials.
#[unsafe(no_mangle)]
pub extern "C" fn pam_sm_setcred(
    _pamh: *mut PamHandle,
    _flags: c_int,
    _argc: c_int,
    _argv: *const *const c_char,
) -> c_int {
    PAM_SUCCESS
}

/// The module's arguments as strings (lossy: options are ASCII).
///
/// # Safety
/// `argv` must point to `argc` valid NUL-terminated strings (or be null).
unsafe fn arguments(argc: c_int, argv: *const *const c_char) -> Vec<String> {
    let n = usize::try_from(argc).unwrap_or(0);
    if argv.is_null() {
        return Vec::new();
    }
    // SAFETY: argv holds argc pointers (caller's contract), read only.
    let pointers = unsafe { std::slice::from_raw_parts(argv, n) };
    let mut out = Vec::with_capacity(n);
    for &p in pointers {
        if p.is_null() {
            continue;
        }
        // SAFETY: each argv entry is a NUL-terminated string (caller's contract).
        let s = unsafe { CStr::from_ptr(p) };
        out.push(s.to_string_lossy().into_owned());
    }
    out
}

/// A live PAM handle, valid for the duration of one `pam_sm_*` call.
struct Pam {
    h: *mut PamHandle,
}

/// Text for C: a NUL (which C would cut at) becomes `?`.
fn c_text(text: &str) -> CString {
    let clean: String = text
        .chars()
        .map(|c| if c == '\0' { '?' } else { c })
        .collect();
    CString::new(clean).unwrap_or_default()
}

impl Pam {
    fn conversation(&self) -> Option<(ConvFn, *mut c_void)> {
        let mut item: *const c_void = ptr::null();
        // SAFETY: self.h is the live handle of this call; item is a valid
        // out-pointer that libpam sets to its own PAM_CONV structure.
        let rc = unsafe { pam_get_item(self.h, PAM_CONV, &mut item) };
        if rc != PAM_SUCCESS || item.is_null() {
            return None;
        }
        let conv = item.cast::<PamConv>();
        // SAFETY: PAM_CONV's item is a struct pam_conv owned by libpam and
        // valid for the call; it is only read.
        let conv = unsafe { ptr::read(conv) };
        conv.conv.map(|f| (f, conv.appdata_ptr))
    }

    /// One message through the application's conversation function; the
    /// reply (for a prompt), copied and wiped from the application's buffer.
    fn converse(&self, style: c_int, text: &str) -> Result<Option<Zeroizing<String>>, c_int> {
        let Some((conv, appdata)) = self.conversation() else {
            return Err(PAM_CONV_ERR);
        };
        let text = c_text(text);
        let message = PamMessage {
            msg_style: style,
            msg: text.as_ptr(),
        };
        let mut messages: *const PamMessage = &message;
        let mut reply: *mut PamResponse = ptr::null_mut();
        // SAFETY: one message, valid (with its text) until conv returns;
        // reply is an out-pointer the application fills with malloc()ed
        // memory or leaves null; appdata is the application's own pointer.
        let rc = unsafe { conv(1, &mut messages, &mut reply, appdata) };
        let answer = if reply.is_null() {
            None
        } else {
            // SAFETY: a non-null reply is an array of one pam_response
            // (num_msg was 1) that the application malloc()ed for us.
            let text_ptr = unsafe { (*reply).resp };
            let answer = if text_ptr.is_null() {
                None
            } else {
                // SAFETY: resp is a NUL-terminated string malloc()ed by the
                // application, ours to read and free.
                let c = unsafe { CStr::from_ptr(text_ptr) };
                let len = c.to_bytes().len();
                let copy = Zeroizing::new(String::from_utf8_lossy(c.to_bytes()).into_owned());
                for i in 0..len {
                    // SAFETY: i < len, inside the string's allocation; a
                    // volatile write, so the wipe is not optimised away.
                    unsafe { ptr::write_volatile(text_ptr.wrapping_add(i), 0) };
                }
                // SAFETY: resp was malloc()ed by the application and is
                // freed once, here (PAM's contract: the module frees it).
                unsafe { libc::free(text_ptr.cast()) };
                Some(copy)
            };
            // SAFETY: the reply array was malloc()ed by the application and
            // is freed once, here.
            unsafe { libc::free(reply.cast()) };
            answer
        };
        if rc != PAM_SUCCESS {
            return Err(PAM_CONV_ERR);
        }
        Ok(answer)
    }
}

impl Host for Pam {
    fn user(&self) -> Option<String> {
        let mut user: *const c_char = ptr::null();
        // SAFETY: self.h is the live handle; user is a valid out-pointer;
        // a null prompt means libpam's default prompt, if it must ask.
        let rc = unsafe { pam_get_user(self.h, &mut user, ptr::null()) };
        if rc != PAM_SUCCESS || user.is_null() {
            return None;
        }
        // SAFETY: on success PAM_USER is a NUL-terminated string owned by
        // libpam, valid for the call; it is copied at once.
        let s = unsafe { CStr::from_ptr(user) };
        s.to_str().ok().map(str::to_string)
    }

    fn item(&self, item_type: c_int) -> Option<String> {
        let mut item: *const c_void = ptr::null();
        // SAFETY: self.h is the live handle; item is a valid out-pointer;
        // the item types asked for (service, tty, rhost) are strings.
        let rc = unsafe { pam_get_item(self.h, item_type, &mut item) };
        if rc != PAM_SUCCESS || item.is_null() {
            return None;
        }
        // SAFETY: these items are NUL-terminated strings owned by libpam,
        // valid for the call; copied at once.
        let s = unsafe { CStr::from_ptr(item.cast::<c_char>()) };
        Some(s.to_string_lossy().into_owned())
    }

    fn prompt(&self, text: &str) -> Result<Zeroizing<String>, c_int> {
        match self.converse(PAM_PROMPT_ECHO_OFF, text)? {
            Some(answer) => Ok(answer),
            None => Err(PAM_CONV_ERR),
        }
    }

    fn info(&self, text: &str) {
        let _ = self.converse(PAM_TEXT_INFO, text);
    }

    fn error(&self, text: &str) {
        let _ = self.converse(PAM_ERROR_MSG, text);
    }

    fn log(&self, priority: c_int, text: &str) {
        let text = c_text(text);
        // SAFETY: self.h is the live handle; the format is a constant "%s"
        // and its one argument a valid NUL-terminated string.
        unsafe { pam_syslog(self.h, priority, c"%s".as_ptr(), text.as_ptr()) };
    }
}

/// Run `f` with SIGCHLD at its default disposition, as pam_unix does around
/// unix_chkpwd: an application that reaps children itself (a SIGCHLD
/// handler calling waitpid) would otherwise take the tool's exit status.
pub fn with_default_sigchld<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: sigaction is a plain C struct; all-zero is a valid value.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut dfl: libc::sigaction = unsafe { std::mem::zeroed() };
    dfl.sa_sigaction = libc::SIG_DFL;
    // SAFETY: valid pointers to two sigaction structs; SIGCHLD is a valid
    // signal. The old disposition is restored below.
    let rc = unsafe { libc::sigaction(libc::SIGCHLD, &dfl, &mut old) };
    let out = f();
    if rc == 0 {
        // SAFETY: restores the disposition saved above.
        unsafe { libc::sigaction(libc::SIGCHLD, &old, ptr::null_mut()) };
    }
    out
}
