"""The functions behind every command, for use from Python. Each takes the config objects the
CLI builds (ModelSource, RunSettings, TimerConfig, ...), stores its run in the results database
(`store=False` to skip, or a path), and returns its result with `.saved` saying where it went.

    import fastslow.api as fs
    from fastslow.measure.bench import RunSettings

    r = fs.bench("zoo:mlp", RunSettings(threads=1, sets={"B": 64}))
    print(r.points[0].measurement.median_s, r.saved.run_id)
"""

from fastslow.api.cost import arch, architecture_family, cost
from fastslow.api.measure import bench, compare, history, peaks, show
from fastslow.api.optimize import optimize
from fastslow.api.predict import collect as predictor_collect
from fastslow.api.predict import evaluate as predictor_eval
from fastslow.api.predict import predict
from fastslow.api.predict import train as predictor_train
from fastslow.api.tasks import demo, life_search, life_study, life_train, xor_train

__all__ = ["arch", "architecture_family", "bench", "compare", "cost", "demo", "history", "life_search", "life_study",
           "life_train", "optimize", "peaks", "predict", "predictor_collect", "predictor_eval", "predictor_train",
           "show", "xor_train"]
