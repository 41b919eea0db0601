//! The `select!` macro: a [`Select`](super::Select) written as a `match` over channel
//! operations. It is exported at the crate root (`bobbin::select!`); the `__select_*`
//! macros are its steps and no API of their own.

/// Waits on several channel operations and runs the arm of the one that completes.
///
/// Arms, in any number and order (each body a block, or an expression followed by a comma):
/// - `recv(rx) -> res => body`: `res` is the `Result<T, RecvError>` of receiving from
///   `rx` (a [`Receiver`](crate::sync::Receiver) or a reference to one);
/// - `send(tx, msg) -> res => body`: `res` is the `Result<(), SendError<T>>` of sending
///   `msg` on `tx`; the `msg` expression is evaluated only if this arm is picked;
/// - at most one of `default => body` (runs if no operation is ready now: the select never
///   parks) and `default(timeout) => body` (runs if none becomes ready within the
///   `Duration`).
///
/// Exactly one operation takes effect. Without a default arm the select parks until one
/// is ready (a disconnected channel's operation is ready, its `res` an `Err`); when
/// several are ready, one is picked at random. Works on green threads of any scheduler
/// and on plain OS threads; the underlying API is [`Select`](crate::sync::Select).
///
/// # Examples
/// ```
/// use bobbin::select;
/// use bobbin::sync::{bounded, channel};
/// use std::time::Duration;
///
/// let (tx, rx) = channel::<u32>();
/// let (idle_tx, idle_rx) = bounded::<String>(0);
///
/// // Nothing is ready: the default arm runs at once.
/// let got = select! {
///     recv(rx) -> msg => msg.ok(),
///     default => None,
/// };
/// assert_eq!(got, None);
///
/// // The receive is ready. The send on the rendezvous channel is not (no receiver
/// // waits), so its message expression is never evaluated.
/// tx.send(7).unwrap();
/// let got = select! {
///     recv(rx) -> msg => Some(msg.unwrap()),
///     send(idle_tx, unreachable!()) -> _ => None,
/// };
/// assert_eq!(got, Some(7));
///
/// // Nothing becomes ready in time.
/// let timed_out = select! {
///     recv(idle_rx) -> _ => false,
///     default(Duration::from_millis(1)) => true,
/// };
/// assert!(timed_out);
///
/// // A green thread that sums jobs until their senders are gone.
/// let total = bobbin::run(move || {
///     let worker = bobbin::spawn(move || {
///         let mut total = 0;
///         loop {
///             select! {
///                 recv(rx) -> job => match job {
///                     Ok(job) => total += job,
///                     Err(_) => break total,
///                 },
///                 recv(idle_rx) -> _ => {}
///             }
///         }
///     });
///     for job in 1..=3 {
///         tx.send(job).unwrap();
///     }
///     drop(tx);
///     worker.join().unwrap()
/// });
/// assert_eq!(total, 6);
/// # drop(idle_tx);
/// ```
#[macro_export]
macro_rules! select {
    ($($tokens:tt)*) => {
        $crate::__select_parse!(
            ()
            ()
            (__bobbin_op0 __bobbin_op1 __bobbin_op2 __bobbin_op3 __bobbin_op4 __bobbin_op5 __bobbin_op6
             __bobbin_op7 __bobbin_op8 __bobbin_op9 __bobbin_op10 __bobbin_op11 __bobbin_op12 __bobbin_op13
             __bobbin_op14 __bobbin_op15 __bobbin_op16 __bobbin_op17 __bobbin_op18 __bobbin_op19
             __bobbin_op20 __bobbin_op21 __bobbin_op22 __bobbin_op23 __bobbin_op24 __bobbin_op25
             __bobbin_op26 __bobbin_op27 __bobbin_op28 __bobbin_op29 __bobbin_op30 __bobbin_op31)
            $($tokens)*
        )
    };
}

/// Step of [`select!`]: turns its arms into a list, one name for each operation.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_parse {
    // All arms read.
    (($($arms:tt)*) ($($default:tt)*) ($($ids:ident)*)) => {
        $crate::__select_emit!(($($arms)*) ($($default)*))
    };

    // recv(rx) -> res => body
    (($($arms:tt)*) $default:tt ($id:ident $($ids:ident)*)
        recv($r:expr) -> $res:pat => $body:block, $($rest:tt)*) => {
        $crate::__select_parse!(($($arms)* [recv $id ($r) ($res) $body]) $default ($($ids)*) $($rest)*)
    };
    (($($arms:tt)*) $default:tt ($id:ident $($ids:ident)*)
        recv($r:expr) -> $res:pat => $body:block $($rest:tt)*) => {
        $crate::__select_parse!(($($arms)* [recv $id ($r) ($res) $body]) $default ($($ids)*) $($rest)*)
    };
    (($($arms:tt)*) $default:tt ($id:ident $($ids:ident)*)
        recv($r:expr) -> $res:pat => $body:expr, $($rest:tt)*) => {
        $crate::__select_parse!(($($arms)* [recv $id ($r) ($res) { $body }]) $default ($($ids)*) $($rest)*)
    };
    (($($arms:tt)*) $default:tt ($id:ident $($ids:ident)*)
        recv($r:expr) -> $res:pat => $body:expr) => {
        $crate::__select_parse!(($($arms)* [recv $id ($r) ($res) { $body }]) $default ($($ids)*))
    };

    // send(tx, msg) -> res => body
    (($($arms:tt)*) $default:tt ($id:ident $($ids:ident)*)
        send($s:expr, $m:expr) -> $res:pat => $body:block, $($rest:tt)*) => {
        $crate::__select_parse!(($($arms)* [send $id ($s) ($m) ($res) $body]) $default ($($ids)*) $($rest)*)
    };
    (($($arms:tt)*) $default:tt ($id:ident $($ids:ident)*)
        send($s:expr, $m:expr) -> $res:pat => $body:block $($rest:tt)*) => {
        $crate::__select_parse!(($($arms)* [send $id ($s) ($m) ($res) $body]) $default ($($ids)*) $($rest)*)
    };
    (($($arms:tt)*) $default:tt ($id:ident $($ids:ident)*)
        send($s:expr, $m:expr) -> $res:pat => $body:expr, $($rest:tt)*) => {
        $crate::__select_parse!(($($arms)* [send $id ($s) ($m) ($res) { $body }]) $default ($($ids)*) $($rest)*)
    };
    (($($arms:tt)*) $default:tt ($id:ident $($ids:ident)*)
        send($s:expr, $m:expr) -> $res:pat => $body:expr) => {
        $crate::__select_parse!(($($arms)* [send $id ($s) ($m) ($res) { $body }]) $default ($($ids)*))
    };

    // default => body, default(timeout) => body: at most one.
    ($arms:tt () $ids:tt default => $body:block, $($rest:tt)*) => {
        $crate::__select_parse!($arms (now $body) $ids $($rest)*)
    };
    ($arms:tt () $ids:tt default => $body:block $($rest:tt)*) => {
        $crate::__select_parse!($arms (now $body) $ids $($rest)*)
    };
    ($arms:tt () $ids:tt default => $body:expr, $($rest:tt)*) => {
        $crate::__select_parse!($arms (now { $body }) $ids $($rest)*)
    };
    ($arms:tt () $ids:tt default => $body:expr) => {
        $crate::__select_parse!($arms (now { $body }) $ids)
    };
    ($arms:tt () $ids:tt default($t:expr) => $body:block, $($rest:tt)*) => {
        $crate::__select_parse!($arms (after ($t) $body) $ids $($rest)*)
    };
    ($arms:tt () $ids:tt default($t:expr) => $body:block $($rest:tt)*) => {
        $crate::__select_parse!($arms (after ($t) $body) $ids $($rest)*)
    };
    ($arms:tt () $ids:tt default($t:expr) => $body:expr, $($rest:tt)*) => {
        $crate::__select_parse!($arms (after ($t) { $body }) $ids $($rest)*)
    };
    ($arms:tt () $ids:tt default($t:expr) => $body:expr) => {
        $crate::__select_parse!($arms (after ($t) { $body }) $ids)
    };

    ($arms:tt ($($default:tt)+) $ids:tt default $($rest:tt)*) => {
        ::core::compile_error!("select!: more than one `default` arm")
    };
    ($arms:tt $default:tt () $($rest:tt)+) => {
        ::core::compile_error!("select!: more than 32 operations")
    };
    ($arms:tt $default:tt $ids:tt $($rest:tt)+) => {
        ::core::compile_error!(
            "select!: expected `recv(rx) -> res => body`, `send(tx, msg) -> res => body`, `default => body` or `default(timeout) => body`"
        )
    };
}

/// Step of [`select!`]: the code, once the arms are read.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_emit {
    (($($arm:tt)*) ($($default:tt)*)) => {{
        let mut __bobbin_select = $crate::sync::Select::new();
        $( $crate::__select_add!(__bobbin_select $arm); )*
        $crate::__select_wait!(__bobbin_select ($($arm)*) $($default)*)
    }};
}

/// Step of [`select!`]: adds one operation, keeping its end and index under the arm's name.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_add {
    ($sel:ident [recv $id:ident ($r:expr) $res:tt $body:tt]) => {
        let $id = {
            let end: &$crate::sync::Receiver<_> = &$r;
            (end, $sel.add_recv(end))
        };
    };
    ($sel:ident [send $id:ident ($s:expr) $m:tt $res:tt $body:tt]) => {
        let $id = {
            let end: &$crate::sync::Sender<_> = &$s;
            (end, $sel.add_send(end))
        };
    };
}

/// Step of [`select!`]: waits as the default arm says, then runs the picked arm.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_wait {
    ($sel:ident $arms:tt) => {{
        let __bobbin_oper = $sel.select();
        $crate::__select_dispatch!(__bobbin_oper $arms)
    }};
    ($sel:ident $arms:tt now $body:tt) => {
        match $sel.try_select() {
            ::core::result::Result::Ok(__bobbin_oper) => $crate::__select_dispatch!(__bobbin_oper $arms),
            ::core::result::Result::Err(_) => $body,
        }
    };
    ($sel:ident $arms:tt after ($t:expr) $body:tt) => {
        match $sel.select_timeout($t) {
            ::core::result::Result::Ok(__bobbin_oper) => $crate::__select_dispatch!(__bobbin_oper $arms),
            ::core::result::Result::Err(_) => $body,
        }
    };
}

/// Step of [`select!`]: completes the picked operation and runs its arm.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_dispatch {
    ($oper:ident ()) => {
        ::core::unreachable!("select!: an operation was picked that no arm added")
    };
    ($oper:ident ([recv $id:ident ($r:expr) ($res:pat) $body:tt] $($more:tt)*)) => {
        if $oper.index() == $id.1 {
            let $res = $oper.recv($id.0);
            $body
        } else {
            $crate::__select_dispatch!($oper ($($more)*))
        }
    };
    ($oper:ident ([send $id:ident ($s:expr) ($m:expr) ($res:pat) $body:tt] $($more:tt)*)) => {
        if $oper.index() == $id.1 {
            let $res = $oper.send($id.0, $m);
            $body
        } else {
            $crate::__select_dispatch!($oper ($($more)*))
        }
    };
}
