"""ddsp models, and `get_model`, the gin-configured model of `ddsp_run`."""
import gin

from ddsp.training.models.autoencoder import Autoencoder
from ddsp.training.models.model import Model, latest_checkpoint

__all__ = ['Autoencoder', 'Model', 'get_model', 'latest_checkpoint']


@gin.configurable(module='ddsp.training.models')
def get_model(model=gin.REQUIRED):
    """The model bound in gin, e.g. `get_model.model = @models.Autoencoder()`."""
    return model
