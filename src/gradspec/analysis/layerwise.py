"""Layer-wise means of gradient metrics per module, the numbers behind the paper's curves."""

from __future__ import annotations

import pandas as pd

from gradspec.store import Run


def layer_means(run: Run, metrics: tuple[str, ...]) -> pd.DataFrame:
    """Mean, standard error and count of ``metrics`` per (module, layer) over the run's ok samples.

    Undefined values (null) are left out of means, never counted as zeros.
    """
    cols = ", ".join(
        f"avg({m}) as {m}_mean, stddev_samp({m}) / sqrt(count({m})) as {m}_se, count({m}) as {m}_n" for m in metrics
    )
    return run.sql(
        f"select module, layer, {cols} from layer_stats "
        "where sample_id in (select sample_id from samples where status = 'ok') "
        "group by module, layer order by module, layer"
    ).df()
