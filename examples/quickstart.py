"""Quickstart: which layer of a network best predicts a stimulus property? (runs in ~1 minute)

The README's quickstart, as a script. A Pipeline (network layer -> PCA -> classifier) and a
GridSearchCV over layers; with ``memory`` the network runs once per stimulus and layer for the
whole search (in ``./cache``). Replace the generated shapes by your pictures
(``StimulusSet.from_csv("stimuli.csv")``) and ``build_model(...)`` by, e.g., ``"alexnet"`` with
``weights="DEFAULT"``.
"""

from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from neuroprobe import DNNFeatureExtractor, PCAReducer, build_model, demo

images, labels = demo.make_shapes(n_per_category=25, seed=0)  # 100 pictures, 4 shape categories
model = build_model("shapes-cnn", weights="trained", random_state=0)  # CNN trained in seconds
pipe = Pipeline([("dnn", DNNFeatureExtractor(model, layers=["conv1"], memory="cache")),
                 ("pca", PCAReducer(n_components=10, whiten=True)), ("clf", LogisticRegression())])
layers = [["conv1"], ["conv2"], ["conv3"], ["conv4"], ["fc1"]]
search = GridSearchCV(pipe, {"dnn__layers": layers}, cv=5).fit(images, labels)
print("best layer:", search.best_params_["dnn__layers"][0], f"accuracy {search.best_score_:.2f}")
