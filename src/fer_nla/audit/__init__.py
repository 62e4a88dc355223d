"""Which training labels are doubtful: suspicion scores from the per-sample signals that
training records at no extra forward (p_gt, p_nn, NAW weight and branch, predicted class,
each epoch), and a calibrated verdict.

**Ranking.** The score of sample ``i`` is its mean *probability margin deficit* over the
scored epochs (all but the first ``skip_epochs``, the warm-up)::

    score_i = mean_e (p_nn[e, i] - p_gt[e, i])            in [-1, 1], higher = more suspicious

This is the area-under-the-margin statistic of Pleiss et al. (2020, "Identifying Mislabeled
Data using the Area Under the Margin Ranking") written with the very quantities NAW navigates
by: NLA's "wrong" branch is ``p_nn > p_gt``, and NAW gives the least weight to samples whose
nearest negative keeps beating the given label with confidence, which is what a large positive
mean margin deficit records. Averaging over epochs makes the score robust to the late
memorisation of noisy labels that a last-epoch score misses.

**How many are likely noisy, and which (the default verdict rule, per class).** A fixed score
cut flags a share that depends on how far training got (a short run's model doubts everything:
25% of the quick start's 4-epoch demo run at a cut of 0.3, where 5% is noisy), so the number of
``likely noisy`` labels comes from an estimate of the noise instead: confident learning
(Northcutt, Jiang and Chuang 2021, "Confident Learning: Estimating Uncertainty in Dataset
Labels", JAIR 70) on the LAST recorded epoch, the model's most trained view
(:func:`estimate_noise`). Its per-class threshold ``t_j`` is the mean self-confidence (p_gt) of
the samples labelled ``j``; a sample labelled ``y`` is off-class when another class ``j`` is
its prediction with a probability of at least ``t_j``; the confident joint's off-diagonal mass
of row ``y``, calibrated to the class's size, is the number of wrong labels among those given
``y``. The rule flags, WITHIN each given class, that many of its highest scores
(:func:`flag_per_class`; cleanlab's ``prune_by_noise_rate`` count, ranked within the row).
Ranking within a class is what separates noise from difficulty: a class the model finds hard
(a rare one: FERPlus disgust, contempt, fear) has higher scores throughout, and a global top-N
(:func:`flag_highest`, kept as ``rule="global"``) hands it the flags; measured on a fine-tuned
FERPlus run, the global rule called 10 of 20 clean disgust labels likely noisy against 1 of 31
clean happiness labels. Per class, a clean rare class gets no more flags than a clean common
one (``tests/audit/test_class_rule.py``: the figures and the regime where one run's
probabilities cannot tell them apart). A class with fewer than :data:`MIN_CLASS_SAMPLES` (50)
scored labels gets no ``likely noisy`` verdict and the audit warns: its count is a binomial
share whose standard error (0.4 / sqrt(n) at 20% noise) exceeds the audit's tolerance below 45.

The estimate needs a model that has learned the classes: one still learning counts its own
errors as wrong labels (over-estimate), one trained until it memorises the noisy labels finds
fewer (under-estimate). So it is trusted only when the model beats chance clearly and the
estimate has settled, moving by at most :data:`SETTLED_CHANGE` (5 points) over the last epoch
(:func:`calibrate`); otherwise no label is called ``likely noisy`` and the audit says why.
Tolerance, tested on planted symmetric noise of 5%, 20% and 40%
(``tests/audit/test_planted_noise.py``, where the measured figures are): the flagged share is
within 5 percentage points of the planted share, or 30% of it where that is more.
``noisy_threshold`` keeps the fixed-score rule.

**Other verdicts.** ``clean`` when the score is at most ``-ambiguous_band`` (the given label
beat its nearest rival by that margin across training); ``ambiguous`` otherwise (the two trade
places, or a rival led but the label was not flagged: a doubtful label is never called clean);
``likely noisy`` takes precedence.

**Which probabilities.** By default the signals are read at the uniform prior, the training
class prior divided out (:func:`signals_at_prior`): a model's pull towards the common classes
otherwise reads as noise in the rare ones' labels.

All functions work on plain numpy arrays with keyword-only options.
"""

from fer_nla.audit.noise import SETTLED_CHANGE, Calibration, NoiseEstimate, calibrate, estimate_noise, off_class
from fer_nla.audit.quality import ClassDetection, DetectionQuality, class_detection, detection_quality, roc_auc
from fer_nla.audit.scores import majority_prediction, scored_epochs, suspicion_scores
from fer_nla.audit.verdicts import MIN_CLASS_SAMPLES, VERDICTS, ClassFlags, flag_highest, flag_per_class, verdicts
from fer_nla.audit.views import UNIFORM_KEYS, VIEWS, signals_at_prior

__all__ = [
    "MIN_CLASS_SAMPLES", "SETTLED_CHANGE", "VERDICTS", "Calibration", "ClassDetection", "ClassFlags", "DetectionQuality",
    "NoiseEstimate", "calibrate", "class_detection", "detection_quality", "estimate_noise", "flag_highest",
    "flag_per_class", "majority_prediction", "off_class", "roc_auc", "scored_epochs", "signals_at_prior",
    "suspicion_scores", "verdicts", "UNIFORM_KEYS", "VIEWS",
]
