//! Values handed to and returned from a context's entry function, and how they map onto
//! System V argument registers and stack slots.

use core::ffi::c_void;

use super::{fp_to_bits, FpReg};

/// One argument for the entry function of a context.
///
/// Integer-class values (pointers, integers, `bool`) go to the general argument
/// registers, `F32` and `F64` to the floating ones, as a direct call would place them.
/// Narrow integers are sign- or zero-extended to 64 bits, which satisfies every callee.
///
/// # Examples
/// ```
/// use bobbin::context::Val;
/// assert_eq!(Val::from(-1i8).to_slot(), u64::MAX);
/// assert_eq!(Val::from(200u8).to_slot(), 200);
/// assert!(Val::F64(1.5).is_float());
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Val {
    /// A raw pointer.
    CPtr(*const c_void),
    /// A `usize`.
    USize(usize),
    /// An `isize`.
    ISize(isize),
    /// A `u8`.
    U8(u8),
    /// A `u16`.
    U16(u16),
    /// A `u32`.
    U32(u32),
    /// A `u64`.
    U64(u64),
    /// An `i8`.
    I8(i8),
    /// An `i16`.
    I16(i16),
    /// An `i32`.
    I32(i32),
    /// An `i64`.
    I64(i64),
    /// A `bool`.
    Bool(bool),
    /// An `f32`.
    F32(f32),
    /// An `f64`.
    F64(f64),
}

impl Val {
    /// Whether the value travels in a floating-point register (`F32`, `F64`).
    ///
    /// # Examples
    /// ```
    /// use bobbin::context::Val;
    ///
    /// assert!(Val::F32(0.5).is_float());
    /// assert!(!Val::U64(5).is_float());
    /// assert!(!Val::CPtr(std::ptr::null()).is_float()); // pointers are integer-class
    /// ```
    pub fn is_float(&self) -> bool {
        matches!(self, Val::F32(_) | Val::F64(_))
    }

    /// The 64-bit register or stack-slot image of the value: integers extended to 64 bits
    /// by their signedness, floats as their bit pattern in the low bits.
    ///
    /// # Examples
    /// ```
    /// use bobbin::context::Val;
    ///
    /// assert_eq!(Val::I32(-2).to_slot(), 0xffff_ffff_ffff_fffe);
    /// assert_eq!(Val::U32(u32::MAX).to_slot(), 0x0000_0000_ffff_ffff);
    /// assert_eq!(Val::Bool(true).to_slot(), 1);
    /// assert_eq!(Val::F32(1.0).to_slot(), u64::from(1.0f32.to_bits()));
    /// ```
    pub fn to_slot(&self) -> u64 {
        match *self {
            Val::CPtr(p) => p as usize as u64,
            Val::USize(v) => v as u64,
            Val::ISize(v) => v as i64 as u64,
            Val::U8(v) => u64::from(v),
            Val::U16(v) => u64::from(v),
            Val::U32(v) => u64::from(v),
            Val::U64(v) => v,
            Val::I8(v) => i64::from(v) as u64,
            Val::I16(v) => i64::from(v) as u64,
            Val::I32(v) => i64::from(v) as u64,
            Val::I64(v) => v as u64,
            Val::Bool(v) => u64::from(v),
            Val::F32(v) => u64::from(v.to_bits()),
            Val::F64(v) => v.to_bits(),
        }
    }
}

macro_rules! impl_from_for_val {
    ($($t:ty => $v:ident),* $(,)?) => {
        $(impl From<$t> for Val {
            fn from(x: $t) -> Val {
                Val::$v(x)
            }
        })*
    };
}

impl_from_for_val! {
    *const c_void => CPtr, usize => USize, isize => ISize, u8 => U8, u16 => U16, u32 => U32,
    u64 => U64, i8 => I8, i16 => I16, i32 => I32, i64 => I64, bool => Bool, f32 => F32,
    f64 => F64,
}

/// The return registers of a finished entry function: rax and xmm0 (aarch64: x0 and v0;
/// the methods below name the x86-64 registers), to be read as the type the function
/// returned.
///
/// # Examples
/// ```
/// use bobbin::context::{Context, ContextHandle, Val};
///
/// extern "C" fn half(x: f64) -> f64 {
///     x / 2.0
/// }
/// let mut stack = bobbin::stack::Stack::new(16 * 1024).unwrap();
/// let mut parent = ContextHandle::new();
/// let mut child = ContextHandle::create_and_init(stack.words_mut(), half as *const () as usize, &[Val::F64(5.0)]).unwrap();
/// // SAFETY: the child runs on `stack`, which outlives it, and returns to `parent`.
/// unsafe { Context::swap(&mut parent, &mut child) };
/// assert_eq!(child.get_untyped_retval().as_f64(), 2.5);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct UntypedRetVal {
    gp: u64,
    fp: FpReg,
}

impl UntypedRetVal {
    pub(crate) fn new(gp: u64, fp: FpReg) -> Self {
        UntypedRetVal { gp, fp }
    }

    /// rax as a `u64`.
    ///
    /// # Examples
    /// ```
    /// # use bobbin::context::{Context, ContextHandle, UntypedRetVal, Val};
    /// # /// Runs `f(args)` on a context of its own and returns its return registers.
    /// # fn call(f: usize, args: &[Val]) -> UntypedRetVal {
    /// #     let mut stack = vec![0u64; 1024];
    /// #     let mut parent = ContextHandle::new();
    /// #     let mut child = ContextHandle::create_and_init(&mut stack, f, args).unwrap();
    /// #     // SAFETY: `stack` outlives the child, which returns to `parent` through the backstop.
    /// #     unsafe { Context::swap(&mut parent, &mut child) };
    /// #     child.get_untyped_retval()
    /// # }
    /// extern "C" fn shl(x: u64, by: u32) -> u64 {
    ///     x << by
    /// }
    /// assert_eq!(call(shl as *const () as usize, &[Val::U64(1), Val::U32(40)]).as_u64(), 1 << 40);
    /// ```
    pub fn as_u64(&self) -> u64 {
        self.gp
    }

    /// rax as an `i64`.
    ///
    /// # Examples
    /// ```
    /// # use bobbin::context::{Context, ContextHandle, UntypedRetVal, Val};
    /// # /// Runs `f(args)` on a context of its own and returns its return registers.
    /// # fn call(f: usize, args: &[Val]) -> UntypedRetVal {
    /// #     let mut stack = vec![0u64; 1024];
    /// #     let mut parent = ContextHandle::new();
    /// #     let mut child = ContextHandle::create_and_init(&mut stack, f, args).unwrap();
    /// #     // SAFETY: `stack` outlives the child, which returns to `parent` through the backstop.
    /// #     unsafe { Context::swap(&mut parent, &mut child) };
    /// #     child.get_untyped_retval()
    /// # }
    /// extern "C" fn neg(x: i64) -> i64 {
    ///     -x
    /// }
    /// assert_eq!(call(neg as *const () as usize, &[Val::I64(1 << 40)]).as_i64(), -(1 << 40));
    /// ```
    pub fn as_i64(&self) -> i64 {
        self.gp as i64
    }

    /// eax as a `u32` (the upper half of rax is undefined for 32-bit returns).
    ///
    /// # Examples
    /// ```
    /// # use bobbin::context::{Context, ContextHandle, UntypedRetVal, Val};
    /// # /// Runs `f(args)` on a context of its own and returns its return registers.
    /// # fn call(f: usize, args: &[Val]) -> UntypedRetVal {
    /// #     let mut stack = vec![0u64; 1024];
    /// #     let mut parent = ContextHandle::new();
    /// #     let mut child = ContextHandle::create_and_init(&mut stack, f, args).unwrap();
    /// #     // SAFETY: `stack` outlives the child, which returns to `parent` through the backstop.
    /// #     unsafe { Context::swap(&mut parent, &mut child) };
    /// #     child.get_untyped_retval()
    /// # }
    /// extern "C" fn wrap(x: u32) -> u32 {
    ///     x.wrapping_add(1)
    /// }
    /// assert_eq!(call(wrap as *const () as usize, &[Val::U32(u32::MAX)]).as_u32(), 0);
    /// ```
    pub fn as_u32(&self) -> u32 {
        self.gp as u32
    }

    /// eax as an `i32`.
    ///
    /// # Examples
    /// ```
    /// # use bobbin::context::{Context, ContextHandle, UntypedRetVal, Val};
    /// # /// Runs `f(args)` on a context of its own and returns its return registers.
    /// # fn call(f: usize, args: &[Val]) -> UntypedRetVal {
    /// #     let mut stack = vec![0u64; 1024];
    /// #     let mut parent = ContextHandle::new();
    /// #     let mut child = ContextHandle::create_and_init(&mut stack, f, args).unwrap();
    /// #     // SAFETY: `stack` outlives the child, which returns to `parent` through the backstop.
    /// #     unsafe { Context::swap(&mut parent, &mut child) };
    /// #     child.get_untyped_retval()
    /// # }
    /// extern "C" fn dec(x: i32) -> i32 {
    ///     x - 1
    /// }
    /// assert_eq!(call(dec as *const () as usize, &[Val::I32(0)]).as_i32(), -1);
    /// ```
    pub fn as_i32(&self) -> i32 {
        self.gp as u32 as i32
    }

    /// al as a `bool` (only the low byte is defined for a `bool` return).
    ///
    /// # Examples
    /// ```
    /// # use bobbin::context::{Context, ContextHandle, UntypedRetVal, Val};
    /// # /// Runs `f(args)` on a context of its own and returns its return registers.
    /// # fn call(f: usize, args: &[Val]) -> UntypedRetVal {
    /// #     let mut stack = vec![0u64; 1024];
    /// #     let mut parent = ContextHandle::new();
    /// #     let mut child = ContextHandle::create_and_init(&mut stack, f, args).unwrap();
    /// #     // SAFETY: `stack` outlives the child, which returns to `parent` through the backstop.
    /// #     unsafe { Context::swap(&mut parent, &mut child) };
    /// #     child.get_untyped_retval()
    /// # }
    /// extern "C" fn odd(x: u64) -> bool {
    ///     x % 2 == 1
    /// }
    /// assert!(call(odd as *const () as usize, &[Val::U64(7)]).as_bool());
    /// assert!(!call(odd as *const () as usize, &[Val::U64(8)]).as_bool());
    /// ```
    pub fn as_bool(&self) -> bool {
        self.gp as u8 != 0
    }

    /// rax as a pointer.
    ///
    /// # Examples
    /// ```
    /// # use bobbin::context::{Context, ContextHandle, UntypedRetVal, Val};
    /// # /// Runs `f(args)` on a context of its own and returns its return registers.
    /// # fn call(f: usize, args: &[Val]) -> UntypedRetVal {
    /// #     let mut stack = vec![0u64; 1024];
    /// #     let mut parent = ContextHandle::new();
    /// #     let mut child = ContextHandle::create_and_init(&mut stack, f, args).unwrap();
    /// #     // SAFETY: `stack` outlives the child, which returns to `parent` through the backstop.
    /// #     unsafe { Context::swap(&mut parent, &mut child) };
    /// #     child.get_untyped_retval()
    /// # }
    /// extern "C" fn second(p: *const u32) -> *const u32 {
    ///     p.wrapping_add(1)
    /// }
    /// let words = [10u32, 20];
    /// let p = call(second as *const () as usize, &[Val::CPtr(words.as_ptr().cast())]).as_ptr();
    /// assert_eq!(p, (&words[1] as *const u32).cast());
    /// ```
    pub fn as_ptr(&self) -> *const c_void {
        self.gp as usize as *const c_void
    }

    /// The low 32 bits of xmm0 as an `f32`.
    ///
    /// # Examples
    /// ```
    /// # use bobbin::context::{Context, ContextHandle, UntypedRetVal, Val};
    /// # /// Runs `f(args)` on a context of its own and returns its return registers.
    /// # fn call(f: usize, args: &[Val]) -> UntypedRetVal {
    /// #     let mut stack = vec![0u64; 1024];
    /// #     let mut parent = ContextHandle::new();
    /// #     let mut child = ContextHandle::create_and_init(&mut stack, f, args).unwrap();
    /// #     // SAFETY: `stack` outlives the child, which returns to `parent` through the backstop.
    /// #     unsafe { Context::swap(&mut parent, &mut child) };
    /// #     child.get_untyped_retval()
    /// # }
    /// extern "C" fn avg(a: f32, b: f32) -> f32 {
    ///     (a + b) / 2.0
    /// }
    /// assert_eq!(call(avg as *const () as usize, &[Val::F32(1.0), Val::F32(2.0)]).as_f32(), 1.5);
    /// ```
    pub fn as_f32(&self) -> f32 {
        f32::from_bits(fp_to_bits(self.fp) as u32)
    }

    /// The low 64 bits of xmm0 as an `f64`.
    ///
    /// # Examples
    /// ```
    /// # use bobbin::context::{Context, ContextHandle, UntypedRetVal, Val};
    /// # /// Runs `f(args)` on a context of its own and returns its return registers.
    /// # fn call(f: usize, args: &[Val]) -> UntypedRetVal {
    /// #     let mut stack = vec![0u64; 1024];
    /// #     let mut parent = ContextHandle::new();
    /// #     let mut child = ContextHandle::create_and_init(&mut stack, f, args).unwrap();
    /// #     // SAFETY: `stack` outlives the child, which returns to `parent` through the backstop.
    /// #     unsafe { Context::swap(&mut parent, &mut child) };
    /// #     child.get_untyped_retval()
    /// # }
    /// extern "C" fn area(r: f64) -> f64 {
    ///     3.0 * r * r
    /// }
    /// assert_eq!(call(area as *const () as usize, &[Val::F64(0.5)]).as_f64(), 0.75);
    /// ```
    pub fn as_f64(&self) -> f64 {
        f64::from_bits(fp_to_bits(self.fp) as u64)
    }
}
