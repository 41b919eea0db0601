//! The project card's shape, written out with the low-level context layer: every child owns
//! a guard-paged stack and a heap-pinned `Context`; a round-robin scheduler on this thread
//! swaps into the children, which swap back when they yield, and regains control through
//! the backstop when their `extern "C"` entry functions return. A backstop callback records
//! which child finished; the scheduler then reads its return registers.
//!
//! Run with `cargo run --release --example backstop_scheduler`. The tour shows the same
//! scheduler (section 2), and `tests/backstop_scheduler.rs` runs it under the test suite;
//! both include this file.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::ffi::c_void;

use bobbin::context::{Context, ContextHandle, Val};
use bobbin::stack::Stack;
use bobbin::Error;

/// The contexts of the child running now and of the scheduler it yields to (null outside
/// the scheduler: then [`yield_now`] does nothing, so a direct call runs straight through).
struct Running {
    child: *mut Context,
    scheduler: *mut Context,
}

thread_local! {
    static RUNNING: Cell<Running> = const {
        Cell::new(Running { child: std::ptr::null_mut(), scheduler: std::ptr::null_mut() })
    };
    /// Indices of the children whose entry functions returned, in the order they did: the
    /// backstop callback's record.
    static FINISHED: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
    /// Calls of [`yield_now`], inside the scheduler or not.
    static YIELDS: Cell<u32> = const { Cell::new(0) };
}

/// Gives the rest of the round to the other children; returns when the scheduler swaps back
/// into this one.
fn yield_now() {
    YIELDS.with(|y| y.set(y.get() + 1));
    let Running { child, scheduler } =
        RUNNING.with(|r| r.replace(Running { child: std::ptr::null_mut(), scheduler: std::ptr::null_mut() }));
    if child.is_null() {
        return;
    }
    // SAFETY: the scheduler set these for the child it swapped into, which is the code
    // running now; both contexts are heap-pinned and outlive the swap.
    unsafe { Context::swap(&mut *child, &mut *scheduler) };
}

/// The backstop callback: runs on the child's stack after its entry function returned,
/// before the scheduler resumes. `data` is the child's index.
unsafe extern "C" fn record_finish(data: *mut c_void) {
    FINISHED.with(|f| f.borrow_mut().push(data as usize));
}

// ---------------------------------------------------------------------------------------
// The children: plain `extern "C"` functions, called directly too for comparison.

/// Mixed integer and float arguments, all in registers; finishes in its first turn.
extern "C" fn weighted(count: u32, weight: f64, offset: i16, scale: f32) -> f64 {
    count as f64 * weight + offset as f64 * scale as f64
}

/// Eight integers (the last two spill onto the stack) and a float; yields twice.
#[allow(clippy::too_many_arguments)]
extern "C" fn checksum(a: u64, b: i32, c: u8, d: u16, e: i64, f: usize, g: u32, h: i8, mix: f32) -> u64 {
    let mut sum = (a * 31) ^ u64::from(b.unsigned_abs());
    yield_now();
    sum += u64::from(c) * 7 + u64::from(d) * 13 + e.unsigned_abs();
    yield_now();
    (sum + f as u64 + u64::from(g) + u64::from(h.unsigned_abs())) * (mix * 4.0) as u64
}

/// Ten floats (the last two spill) and two integers; yields once per round of its loop.
#[allow(clippy::too_many_arguments)]
extern "C" fn polynomial(
    rounds: u32,
    x: f64,
    c0: f64,
    c1: f64,
    c2: f64,
    c3: f64,
    c4: f64,
    c5: f64,
    c6: f64,
    c7: f64,
    bias: i64,
    c8: f32,
) -> f64 {
    let coefficients = [c0, c1, c2, c3, c4, c5, c6, c7, c8 as f64];
    let mut total = bias as f64;
    for round in 0..rounds {
        total += coefficients.iter().rev().fold(0.0, |acc, c| acc * x + c) * (round + 1) as f64;
        yield_now();
    }
    total
}

/// Counts down, yielding at each step; a negative integer result.
extern "C" fn countdown(from: u64, step: f32, floor: i32) -> i64 {
    let mut value = from as i64;
    while value > floor as i64 {
        value -= (step * 2.0) as i64;
        yield_now();
    }
    value - 1000
}

/// A child's return type, which says which register its result is in.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Returns {
    /// In rax, read with `get_retval_gp(0)`.
    U64,
    /// In rax, read with `get_retval_gp(0)`.
    I64,
    /// In xmm0, read with `get_retval_fp()`.
    F64,
}

/// A child's result as the scheduler read it and as a direct call of the same function gave it.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// The entry function's name.
    pub name: &'static str,
    /// Which return register was read.
    pub returns: Returns,
    /// The result read from the child's context, as bits (an f64's bits for `Fp`).
    pub scheduled: u64,
    /// The result of calling the function directly, as bits.
    pub direct: u64,
    /// How many times the scheduler swapped into the child.
    pub turns: u32,
    /// How many times the function yields when called directly.
    pub yields: u32,
    /// How many times the backstop callback ran for the child.
    pub finishes: usize,
    /// Its place in the order in which the children finished (0 first).
    pub finished_as: usize,
}

impl Outcome {
    /// The scheduled result, formatted as the function's return type.
    pub fn show(&self, bits: u64) -> String {
        match self.returns {
            Returns::U64 => format!("{bits}"),
            Returns::I64 => format!("{}", bits as i64),
            Returns::F64 => format!("{}", f64::from_bits(bits)),
        }
    }
}

/// One child: its entry function with its arguments, the direct call of the same, and
/// where its result comes back.
struct Child {
    name: &'static str,
    fptr: usize,
    args: Vec<Val>,
    returns: Returns,
    direct: fn() -> u64,
}

fn children() -> Vec<Child> {
    vec![
        Child {
            name: "polynomial",
            fptr: polynomial as *const () as usize,
            args: vec![
                Val::U32(3),
                Val::F64(0.5),
                Val::F64(1.0),
                Val::F64(-2.0),
                Val::F64(3.0),
                Val::F64(0.25),
                Val::F64(8.0),
                Val::F64(-1.5),
                Val::F64(0.125),
                Val::F64(4.0),
                Val::I64(-7),
                Val::F32(2.5),
            ],
            returns: Returns::F64,
            direct: || polynomial(3, 0.5, 1.0, -2.0, 3.0, 0.25, 8.0, -1.5, 0.125, 4.0, -7, 2.5).to_bits(),
        },
        Child {
            name: "weighted",
            fptr: weighted as *const () as usize,
            args: vec![Val::U32(12), Val::F64(0.75), Val::I16(-40), Val::F32(0.5)],
            returns: Returns::F64,
            direct: || weighted(12, 0.75, -40, 0.5).to_bits(),
        },
        Child {
            name: "countdown",
            fptr: countdown as *const () as usize,
            args: vec![Val::U64(10), Val::F32(1.5), Val::I32(2)],
            returns: Returns::I64,
            direct: || countdown(10, 1.5, 2) as u64,
        },
        Child {
            name: "checksum",
            fptr: checksum as *const () as usize,
            args: vec![
                Val::U64(0xfeed),
                Val::I32(-3),
                Val::U8(200),
                Val::U16(60_000),
                Val::I64(-123_456),
                Val::USize(42),
                Val::U32(7),
                Val::I8(-8),
                Val::F32(0.75),
            ],
            returns: Returns::U64,
            direct: || checksum(0xfeed, -3, 200, 60_000, -123_456, 42, 7, -8, 0.75),
        },
    ]
}

/// A child the scheduler runs: its context, on its own stack.
struct Task {
    ctx: ContextHandle,
    // The child's frames live on it until it finishes.
    _stack: Stack,
    turns: u32,
}

/// Runs every child to completion, round robin, on this thread, and returns what each one
/// returned next to the result of calling its function directly.
pub fn run() -> Result<Vec<Outcome>, Error> {
    FINISHED.with(|f| f.borrow_mut().clear());
    let children = children();
    let mut scheduler = ContextHandle::new();
    let mut tasks = Vec::new();
    for (index, child) in children.iter().enumerate() {
        let mut stack = Stack::new(32 * 1024)?;
        let mut ctx = ContextHandle::new();
        Context::init_with_callback(
            stack.words_mut(),
            &mut ctx,
            record_finish,
            index as *mut c_void,
            child.fptr,
            &child.args,
        )?;
        tasks.push(Task { ctx, _stack: stack, turns: 0 });
    }

    let mut results = vec![None; tasks.len()];
    let mut ready: VecDeque<usize> = (0..tasks.len()).collect();
    while let Some(index) = ready.pop_front() {
        let task = &mut tasks[index];
        task.turns += 1;
        RUNNING.with(|r| r.set(Running { child: &mut *task.ctx, scheduler: &mut *scheduler }));
        // The child was initialised on its own stack, which lives in `tasks` until the end
        // of this function, and uses a few hundred bytes of its 32 KiB.
        // SAFETY: as just said; it comes back here by yielding (the swap in `yield_now`) or
        // through the backstop (this swap made `scheduler` its parent).
        unsafe { Context::swap(&mut scheduler, &mut task.ctx) };
        RUNNING.with(|r| r.set(Running { child: std::ptr::null_mut(), scheduler: std::ptr::null_mut() }));
        let finished = FINISHED.with(|f| f.borrow().last() == Some(&index));
        if !finished {
            ready.push_back(index);
            continue;
        }
        results[index] = Some(match children[index].returns {
            Returns::U64 | Returns::I64 => task.ctx.get_retval_gp(0),
            // The low 64 bits of xmm0 hold the f64.
            Returns::F64 => low_f64(task.ctx.get_retval_fp()).to_bits(),
        });
    }

    let order = FINISHED.with(|f| f.borrow().clone());
    Ok(children
        .iter()
        .enumerate()
        .map(|(index, child)| {
            YIELDS.with(|y| y.set(0));
            let direct = (child.direct)();
            (index, child, direct, YIELDS.with(Cell::get))
        })
        .map(|(index, child, direct, yields)| Outcome {
            name: child.name,
            returns: child.returns,
            scheduled: results[index].expect("every child finished"),
            direct,
            turns: tasks[index].turns,
            yields,
            finishes: order.iter().filter(|&&i| i == index).count(),
            finished_as: order.iter().position(|&i| i == index).expect("the callback recorded it"),
        })
        .collect())
}

/// The f64 in the low half of an xmm register value.
#[cfg(target_arch = "x86_64")]
fn low_f64(xmm: core::arch::x86_64::__m128) -> f64 {
    use core::arch::x86_64::{_mm_castps_pd, _mm_cvtsd_f64};
    // SAFETY: SSE2, which both intrinsics need, is part of the x86-64 baseline.
    unsafe { _mm_cvtsd_f64(_mm_castps_pd(xmm)) }
}

/// The f64 in the low half of v0, which comes back as its 128 bits.
#[cfg(target_arch = "aarch64")]
fn low_f64(v0: u128) -> f64 {
    f64::from_bits(v0 as u64)
}

/// Prints every child's result through the scheduler and by a direct call.
pub fn print(outcomes: &[Outcome]) {
    for o in outcomes {
        let same = if o.scheduled == o.direct { "=" } else { "!=" };
        println!(
            "   {:<10} finished {} after {} turn(s): {} (from {}) {same} {} (direct call)",
            o.name,
            ordinal(o.finished_as),
            o.turns,
            o.show(o.scheduled),
            if o.returns == Returns::F64 { "xmm0" } else { "rax" },
            o.show(o.direct),
        );
    }
}

fn ordinal(i: usize) -> &'static str {
    ["first", "second", "third", "fourth", "fifth"].get(i).copied().unwrap_or("later")
}

#[allow(dead_code)] // included by the tour and a test, which have mains of their own
fn main() -> Result<(), Error> {
    println!("round-robin over {} children, each on its own guard-paged Stack:", children().len());
    let outcomes = run()?;
    print(&outcomes);
    for o in &outcomes {
        assert_eq!(o.scheduled, o.direct, "{}: the scheduler read another result than a direct call gives", o.name);
        assert_eq!(o.finishes, 1, "{}: the backstop callback ran {} times", o.name, o.finishes);
    }
    println!("every result matches its direct call; the backstop callback ran once per child");
    Ok(())
}
