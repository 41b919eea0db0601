//! `ContextHandle`: a `Context` in a heap allocation of its own, so that it never moves.

use core::fmt;
use core::ops::{Deref, DerefMut};

use super::{Context, Val};
use crate::Error;

/// A [`Context`] in its own heap allocation, so it never moves.
///
/// # Examples
/// ```
/// use bobbin::context::{Context, ContextHandle, Val};
///
/// extern "C" fn entrypoint(x: u64, y: f32) -> f32 {
///     x as f32 + y
/// }
/// let mut stack = vec![0u64; 1024].into_boxed_slice();
/// let mut parent = ContextHandle::new();
/// let child = ContextHandle::create_and_init(&mut *stack, entrypoint as *const () as usize, &[Val::U64(120), Val::F32(0.25)]);
/// assert!(child.is_ok());
/// let mut child = child.unwrap();
/// // SAFETY: `entrypoint` needs far less than the 8 KiB of `stack`, which outlives the
/// // child; the child returns to `parent` through the backstop.
/// unsafe { Context::swap(&mut parent, &mut child) };
/// assert_eq!(child.get_untyped_retval().as_f32(), 120.25);
///
/// // Spilled arguments (a ninth float), on a guard-paged stack.
/// #[allow(clippy::too_many_arguments)]
/// extern "C" fn mix(a: i32, x0: f64, x1: f64, x2: f64, x3: f64, x4: f64, x5: f64, x6: f64, x7: f64, x8: f64) -> f64 {
///     a as f64 * (x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7) + x8
/// }
/// let mut stack = bobbin::stack::Stack::new(16 * 1024).unwrap();
/// let mut args = vec![Val::I32(-3)];
/// args.extend([Val::F64(0.5); 8]);
/// args.push(Val::F64(7.0));
/// let mut child = ContextHandle::create_and_init(stack.words_mut(), mix as *const () as usize, &args).unwrap();
/// // SAFETY: as above.
/// unsafe { Context::swap(&mut parent, &mut child) };
/// assert_eq!(child.get_untyped_retval().as_f64(), -5.0);
/// ```
pub struct ContextHandle {
    ctx: Box<Context>,
}

impl ContextHandle {
    /// A zeroed context on the heap.
    ///
    /// # Examples
    /// ```
    /// let handle = bobbin::context::ContextHandle::new();
    /// assert!(handle.parent().is_null()); // a `Context` through `Deref`
    /// ```
    pub fn new() -> ContextHandle {
        ContextHandle { ctx: Box::new(Context::new()) }
    }

    /// A heap context prepared by [`Context::init`].
    ///
    /// # Errors
    /// As [`Context::init`].
    ///
    /// # Examples
    /// ```
    /// use bobbin::context::{Context, ContextHandle, Val};
    /// use bobbin::Error;
    ///
    /// extern "C" fn is_even(x: u64) -> bool {
    ///     x % 2 == 0
    /// }
    /// let f = is_even as *const () as usize;
    /// let mut stack = vec![0u64; 1024];
    /// let mut parent = ContextHandle::new();
    /// let mut child = ContextHandle::create_and_init(&mut stack, f, &[Val::U64(10)]).unwrap();
    /// // SAFETY: `stack` outlives the child, which returns to `parent` through the backstop.
    /// unsafe { Context::swap(&mut parent, &mut child) };
    /// assert!(child.get_untyped_retval().as_bool());
    ///
    /// let mut tiny = [0u64; 4];
    /// assert!(matches!(ContextHandle::create_and_init(&mut tiny, f, &[]), Err(Error::StackTooSmall { .. })));
    /// ```
    pub fn create_and_init(stack: &mut [u64], fptr: usize, args: &[Val]) -> Result<ContextHandle, Error> {
        let mut handle = ContextHandle::new();
        Context::init(stack, &mut handle, fptr, args)?;
        Ok(handle)
    }
}

impl Default for ContextHandle {
    fn default() -> Self {
        ContextHandle::new()
    }
}

impl Deref for ContextHandle {
    type Target = Context;
    fn deref(&self) -> &Context {
        &self.ctx
    }
}

impl DerefMut for ContextHandle {
    fn deref_mut(&mut self) -> &mut Context {
        &mut self.ctx
    }
}

impl fmt::Debug for ContextHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ContextHandle").field(&*self.ctx).finish()
    }
}
