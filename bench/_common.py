"""Helpers shared by the benchmarks: quiet TensorFlow start and the machine's matmul peak."""
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def matmul_gflops(precision, n=2048, repeats=20):
    """This machine's TensorFlow matmul throughput in the given precision (GFLOP/s)."""
    import tensorflow as tf

    dtype = tf.bfloat16 if precision == "mixed_bfloat16" else tf.float32
    a = tf.random.uniform((n, n), dtype=tf.float32)
    a = tf.cast(a, dtype)

    @tf.function
    def run():
        x = a
        for _ in range(repeats):
            x = tf.matmul(x, a) * tf.cast(1e-3, dtype)
        return tf.reduce_sum(tf.cast(x, tf.float32))

    run()
    t = time.perf_counter()
    run().numpy()
    return 2 * n ** 3 * repeats / (time.perf_counter() - t) / 1e9


def set_threads(threads):
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
