"""aws-ebs-csi-driver: EBS volumes for PersistentVolumeClaims, and the storage classes (upstream chart)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from ..capability import STORAGE_CLASS
from ..model.model import Controller, Name, Strict
from ..render import helmvalues as hv
from .base import CONTROLLERS, Kind


class StorageClassSpec(Strict):
    volume_type: Literal["gp3", "gp2", "io1", "io2", "st1", "sc1"]
    encrypted: bool = True
    reclaim_policy: Literal["Delete", "Retain"] = "Delete"
    allow_volume_expansion: bool = True
    default: bool = False
    """The class a PersistentVolumeClaim without storageClassName gets."""


class AwsEbsCsiDriver(Controller):
    """EBS volumes for PersistentVolumeClaims; provides the storage classes listed here.

    `resources` apply to every container of the controller and of the per-node plugin."""

    type: Literal["aws-ebs-csi-driver"]
    storage_classes: Annotated[dict[Name, StorageClassSpec], Field(min_length=1)]


def values(plan: Any, comp: Any) -> dict[str, Any]:
    """aws-ebs-csi-driver chart 2.64.0 values: the controller on its node, the node plugin everywhere, the classes."""
    model = plan.model
    ctl: AwsEbsCsiDriver = comp.spec
    res = hv.resources(ctl.resources)
    classes = []
    for name, sc in ctl.storage_classes.items():
        entry: dict[str, Any] = {
            "name": name,
            "volumeBindingMode": "WaitForFirstConsumer",
            "reclaimPolicy": sc.reclaim_policy,
            "allowVolumeExpansion": sc.allow_volume_expansion,
            "parameters": {"type": sc.volume_type, "encrypted": "true" if sc.encrypted else "false"},
        }
        if sc.default:
            entry["annotations"] = {"storageclass.kubernetes.io/is-default-class": "true"}
        classes.append(entry)
    return {
        "controller": {"replicaCount": ctl.replicas, "region": model.cluster.region,
                       "k8sTagClusterId": model.cluster.name, **hv.controller(model, ctl)},
        "node": {"resources": res, "tolerateAllTaints": True, "enableWindows": False},
        "sidecars": {s: {"resources": res} for s in (
            "provisioner", "attacher", "snapshotter", "livenessProbe", "resizer", "nodeDriverRegistrar", "volumemodifier")},
        "storageClasses": classes,
    }


KIND = Kind(
    name="aws-ebs-csi-driver", section=CONTROLLERS, model=AwsEbsCsiDriver, values=values, single=True,
    provides=lambda model, ctl: [(STORAGE_CLASS, name) for name in ctl.storage_classes],
)
