;; Test guest: grows its function table without bound, so that the table cap
;; must stop it. Rust cannot emit `table.grow`, so this guest is written as a
;; core module and made into a component of the trace:udf world with
;; `build.sh` (wasm-tools); `table.wasm` is the result, kept beside it.
(module
  (memory (export "memory") 1)
  (table $functions 1 funcref)
  (global $next (mut i32) (i32.const 1024))

  ;; `run(task) -> result<summary, udf-error>`: the task arrives flattened,
  ;; the result would be written behind the returned pointer.
  (func (export "run")
    (param i32 i32 i32 i32 i32 i64 i64 i64 i32 i32) (result i32)
    (loop $grow
      ;; `table.grow` answers -1 once growth is refused; trap then, as a
      ;; guest that cannot get what it needs would.
      (if (i32.eq (table.grow $functions (ref.null func) (i32.const 1000)) (i32.const -1))
        (then unreachable))
      (br $grow))
    unreachable)

  ;; A bump allocator for the strings the host passes in; never frees.
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $at i32)
    (local.set $at
      (i32.and
        (i32.add (global.get $next) (i32.sub (local.get 2) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get 2))))
    (global.set $next (i32.add (local.get $at) (local.get 3)))
    (local.get $at)))
